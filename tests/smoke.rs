use timing_runtime::timed;

#[timed(phase = "gradient")]
fn gradient(x: f64) -> f64 { std::hint::black_box(2.0 * x) }

#[timed(step)]
fn step(x: &mut f64) { let g = gradient(*x); *x -= 0.1 * g; }

#[timed(batch)]
fn train(x: &mut f64, n: usize) { for _ in 0..n { step(x); } }

#[test]
fn smoke() {
    let mut x = 1.0;
    train(&mut x, 100);
    let s = timing_runtime::summary();
    println!("{s}\n{s:#?}\n{:?}", timing_runtime::last_batch());
    assert_eq!(s.total_steps, 100);
}
