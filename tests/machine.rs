//! The machine beside the code (issue 29): each batch says what its thread got of a CPU, and a batch
//! whose wall time is well above its CPU time is marked as waiting (its thread slept) or preempted (a busy
//! sibling shared its core); the summary adds them up with the process's resident memory.

#![cfg(all(feature = "timing", target_os = "linux"))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{exclusive, spin};
use timing_runtime::{Stall, last_batch, summary, timed};

#[timed(step)]
fn step(micros: u64) {
    spin(micros);
}

#[timed(batch)]
fn batch(micros: u64, sleep: Duration) {
    for _ in 0..10 {
        step(micros);
    }
    std::thread::sleep(sleep);
}

#[test]
fn a_batch_that_sleeps_is_marked_waiting() {
    let _guard = exclusive();
    batch(100, Duration::from_millis(30));
    let timing = last_batch().expect("a batch");
    let machine = timing.machine.expect("the machine is read on Linux");
    assert!(machine.cpu_pct(timing.compute_ns) < 80.0, "{machine:?} in {} ns", timing.compute_ns);
    assert!(machine.waits >= 1, "{machine:?}");
    assert_eq!(machine.stall(timing.compute_ns), Some(Stall::Waiting), "{machine:?}");
    assert!(machine.resident_bytes > 1 << 20, "{machine:?}");
    let run = summary();
    let totals = run.machine.clone().expect("the run's machine");
    assert_eq!((totals.waiting_batches, totals.preempted_batches), (1, 0), "{totals:?}");
    assert_eq!(totals.batch_ns, timing.compute_ns);
    assert_eq!(totals.cpu_ns, machine.cpu_ns);
    assert!(totals.peak_resident_bytes >= totals.resident_bytes && totals.resident_bytes > 0);
    let report = run.to_string();
    assert!(report.contains("  Machine: batches on a CPU ") && report.contains("(1 stalled: 1 waiting, 0 preempted)"));
    let metrics = run.to_prometheus();
    assert!(metrics.contains("timing_stalled_batches_total{kind=\"waiting\"} 1\n"), "{metrics}");
    assert!(metrics.contains("# TYPE timing_resident_memory_bytes gauge\n"), "{metrics}");
    // The batch series carries them too.
    let point = run.batch_points.last().expect("a point");
    assert_eq!((point.cpu_ns, point.resident_bytes), (machine.cpu_ns, machine.resident_bytes));
    assert_eq!(point.cpu_batch_ns, timing.compute_ns);
}

#[test]
fn a_batch_that_only_computes_ran_on_a_cpu_all_along() {
    let _guard = exclusive();
    // On a busy machine another process may take the core for a while: one clean batch of five will do.
    let clean = (0..5).any(|_| {
        batch(3_000, Duration::ZERO);
        let timing = last_batch().expect("a batch");
        let machine = timing.machine.expect("the machine is read on Linux");
        machine.stall(timing.compute_ns).is_none() && machine.cpu_pct(timing.compute_ns) > 90.0
    });
    assert!(clean, "no batch of five ran on a CPU for 90% of its time: {:?}", last_batch().and_then(|b| b.machine));
}

#[test]
fn short_batches_that_only_compute_are_not_marked_stalled() {
    let _guard = exclusive();
    // Batches of 5 ms: the scheduler's own account of a running thread's CPU time lags by up to a tick
    // (4 ms), which read a third of such batches as stalled; the thread's clock does not lag.
    let stalled = (0..20)
        .filter(|_| {
            batch(500, Duration::ZERO);
            let timing = last_batch().expect("a batch");
            timing.machine.expect("the machine is read on Linux").stall(timing.compute_ns).is_some()
        })
        .count();
    // A busy machine may take the core from a batch or two.
    assert!(stalled <= 3, "{stalled} of 20 batches that only computed were marked stalled");
}

#[test]
fn many_short_batches_read_one_in_64_and_their_points_keep_the_share_right() {
    let _guard = exclusive();
    // 600 batches of 100 µs: read one in 64, and merged into points of two and four batches.
    for _ in 0..600 {
        batch(10, Duration::ZERO);
    }
    let run = summary();
    let read: Vec<_> = run.batch_points.iter().filter(|point| point.cpu_batch_ns > 0).collect();
    assert!(read.len() >= 5 && read.len() < run.batch_points.len() / 4, "{} of {}", read.len(), run.batch_points.len());
    // Each point's share is its read batches' own: near all of their time, however many unread batches
    // the point also holds (over the point's whole batch time it would be a few percent).
    let busy = read.iter().filter(|point| point.cpu_ns as f64 > 0.5 * point.cpu_batch_ns as f64).count();
    assert!(busy * 10 >= read.len() * 8, "{busy} of {} points read on a CPU most of the time", read.len());
    let machine = run.machine.expect("the run's machine");
    assert!(machine.cpu_pct > 50.0, "{machine:?}");
}

/// The first CPU this process may run on (a container's cpuset need not hold CPU 0).
fn first_allowed_cpu() -> usize {
    // SAFETY: a zeroed `cpu_set_t` is an empty set; `sched_getaffinity` writes the calling thread's set into
    // the one given, and `CPU_ISSET` reads it.
    #[allow(unsafe_code)]
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        (0..libc::CPU_SETSIZE as usize).find(|cpu| libc::CPU_ISSET(*cpu, &set)).expect("a CPU to run on")
    }
}

/// Pins the calling thread to CPU `cpu`.
fn pin(cpu: usize) {
    // SAFETY: a zeroed `cpu_set_t` is an empty set; `CPU_SET` and `sched_setaffinity` read and write only
    // the set given, and 0 names the calling thread.
    #[allow(unsafe_code)]
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(pinned, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
}

#[test]
fn a_batch_pinned_beside_a_busy_sibling_is_marked_preempted() {
    let _guard = exclusive();
    static STOP: AtomicBool = AtomicBool::new(false);
    let cpu = first_allowed_cpu();
    let sibling = std::thread::spawn(move || {
        pin(cpu);
        while !STOP.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    pin(cpu);
    // 200 ms of wall time spinning, shared with the sibling: about half of it on the CPU.
    batch(20_000, Duration::ZERO);
    STOP.store(true, Ordering::Relaxed);
    sibling.join().expect("the sibling ends");
    let timing = last_batch().expect("a batch");
    let machine = timing.machine.expect("the machine is read on Linux");
    assert!(machine.cpu_pct(timing.compute_ns) < 75.0, "{machine:?} in {} ns", timing.compute_ns);
    assert_eq!(machine.stall(timing.compute_ns), Some(Stall::Preempted), "{machine:?}");
    let totals = summary().machine.expect("the run's machine");
    assert_eq!((totals.waiting_batches, totals.preempted_batches), (0, 1), "{totals:?}");
    assert!(totals.cpu_pct < 75.0, "{totals:?}");
}
