//! The shapes in edition 2018.
#![cfg_attr(not(timing_lint_shapes), deny(warnings))]

use tr::timed;

include!("../../shapes/main.rs");
