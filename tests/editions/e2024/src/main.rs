//! The shapes in edition 2024.
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

use timing_runtime::timed;

include!("../../shapes/main.rs");
