// Code that clippy (pedantic and restriction lints users set) reports, each lint inside a timed function:
// built with the `lints` feature, on and off, the reports must be the same at the same places.

#[timed]
pub fn conversions(a: Vec<u32>, b: Vec<u32>) -> u32 {
    a.into_iter().zip(b.into_iter()).map(|(x, y)| x * y).sum()
}

#[timed]
pub fn prints(value: u32) {
    println!("{}", value);
}

#[timed]
pub fn panics(value: u32) -> u32 {
    if value > 10 {
        panic!("too large");
    }
    let fallback = 1;
    value + fallback
}

#[timed]
pub fn returns(flag: bool) -> u32 {
    if flag {
        return 1;
    }
    2
}

#[timed]
pub fn unit_semicolon() {
    ();
}

#[timed]
pub fn items_first_and_after(value: u32) -> u32 {
    use std::ops::Add;
    const ONE: u32 = 1;
    let sum = value.add(ONE);
    const TWO: u32 = 2;
    sum + TWO
}

// Names written as raw strings: clippy's `needless_raw_string_hashes` is about the attribute's literal,
// which the expansion must not repeat as written (it did, and the lint fired with timing on only).
#[timed(name = r#"raw name"#, phase = r#"raw phase"#)]
pub fn raw_names(value: u32) -> u32 {
    value
}
