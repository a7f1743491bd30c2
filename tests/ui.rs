//! Each misuse of `#[timed]` is one clear error at the offending token (issue 3); all cases compile in one
//! trybuild run. Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui` and read it.

#![cfg(feature = "timing")]

#[test]
fn misuse_is_one_clear_error() {
    trybuild::TestCases::new().compile_fail("tests/ui/fail/*.rs");
}
