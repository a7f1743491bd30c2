//! The shapes in edition 2021.
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

use timing_runtime::timed;

include!("../../shapes/main.rs");
