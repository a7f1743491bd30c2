use timing_runtime::timed;
#[timed]
#[inline(never)]
fn leaf(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}
fn main() {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(leaf(i));
    }
    std::hint::black_box(acc);
}
