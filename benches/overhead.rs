//! `cargo bench -p timing-benches --bench overhead`: divan's statistics for each contender on the leaf and
//! nested workloads, one thread and two, in one run. Time per call; subtract "no instrumentation" for the
//! cost of a span (the `table` bench prints that subtraction and the ratios).

mod contenders;

use contenders::{Contender, batch};

const CALLS: u64 = 1_000;

fn main() {
    divan::main();
}

const CONTENDERS: [Contender; 12] = Contender::ALL;

#[divan::bench(args = CONTENDERS, threads = [1, 2])]
fn leaf(bencher: divan::Bencher, contender: Contender) {
    contender.prepare();
    let f = contender.leaf();
    bencher.counter(divan::counter::ItemsCount::new(CALLS)).bench(|| batch(contender, CALLS, 1, f));
}

#[divan::bench(args = CONTENDERS)]
fn nested_step(bencher: divan::Bencher, contender: Contender) {
    contender.prepare();
    let Some(step) = contender.step() else { return };
    bencher
        .counter(divan::counter::ItemsCount::new(CALLS))
        .bench(|| batch(contender, CALLS, contenders::SPANS_PER_STEP, step));
}

impl std::fmt::Display for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
