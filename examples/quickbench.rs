use std::time::Instant;
use timing_runtime::timed;
#[inline(never)]
fn plain(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}
#[timed]
#[inline(never)]
fn leaf(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}
#[inline(never)]
fn tsc_pair(x: u64) -> u64 {
    let a = unsafe { core::arch::x86_64::_rdtsc() };
    let r = std::hint::black_box(x).wrapping_mul(3);
    let b = unsafe { core::arch::x86_64::_rdtsc() };
    std::hint::black_box(b - a);
    r
}
thread_local! {
    static MINI: std::cell::RefCell<(Vec<u64>, [u64; 64])> = const { std::cell::RefCell::new((Vec::new(), [0; 64])) };
}
#[inline(never)]
fn mini_enter() {
    MINI.with(|m| {
        let mut m = m.borrow_mut();
        m.0.push(0);
        let t = unsafe { core::arch::x86_64::_rdtsc() };
        *m.0.last_mut().unwrap() = t;
    });
}
#[inline(never)]
fn mini_exit(site: usize) {
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    MINI.with(|m| {
        let mut m = m.borrow_mut();
        let s = m.0.pop().unwrap_or(t);
        m.1[site & 63] += t - s;
    });
}
#[inline(never)]
fn mini(x: u64) -> u64 {
    mini_enter();
    let r = std::hint::black_box(x).wrapping_mul(3);
    mini_exit(5);
    r
}
fn run(name: &str, f: fn(u64) -> u64) -> f64 {
    let n = 5_000_000u64;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut acc = 0u64;
        for i in 0..n {
            acc = acc.wrapping_add(f(i));
        }
        std::hint::black_box(acc);
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name:10} {best:.2} ns/call");
    best
}
fn main() {
    let p = run("plain", plain);
    let t = run("tsc pair", tsc_pair);
    let m = run("mini", mini);
    println!("mini {:.2}", m - p);
    let l = run("timed", leaf);
    timing_runtime::set_granularity(timing_runtime::TimingGranularity::None);
    let n = run("None", leaf);
    println!("tsc floor {:.2}, timed {:.2} ({:.2}x), none {:.2}", t - p, l - p, (l - p) / (t - p), n - p);
}
