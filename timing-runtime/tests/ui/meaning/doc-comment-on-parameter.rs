use timing_runtime::timed;

// Without the attribute rustc says "documentation comments cannot be applied to function parameters"; with
// it, the same, at the same comment.
#[timed]
fn scale(
    /// The value to scale.
    value: f64,
) -> f64 {
    value * 2.0
}

fn main() {
    scale(1.0);
}
