//! Compile-time behaviour of `#[timed]` (issue 3), in one trybuild run: each misuse is one clear error at
//! the offending token (`ui/fail`); lints and auto traits mean what they meant without the attribute
//! (`ui/meaning`: these must fail to compile, with the same error as the unannotated function); and forms
//! that need a crate of their own compile (`ui/pass`). Here, in the runtime's own tests, trybuild builds the
//! cases with the runtime's features, so the `timing` feature is on as it is for users (from the suite's
//! tests, it built them against the runtime with its default features off). Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test ui` and read it.

#![cfg(feature = "timing")]

#[test]
fn compile_time_behaviour() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.compile_fail("tests/ui/meaning/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
