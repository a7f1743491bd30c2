//! Reading what the machine gives a batch's thread, at the batch's start and end (the slow path): its CPU
//! time from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` and its context switches from
//! `getrusage(RUSAGE_THREAD)` (1 µs both here; a thread whose batches are shorter than [`READ_ABOVE_NS`]
//! reads them for one batch in [`SHORT_BATCHES_READ`]), and
//! the process's resident memory from `/proc/self/statm` at most every [`RESIDENT_EVERY_NS`] (a read of a
//! few microseconds that batches of one short step each would otherwise pay every time). Linux only:
//! elsewhere both are `None` and reports leave the machine out.

// C calls: each unsafe block has its reason beside it.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::BatchMachine;
use crate::record::clock;

/// The resident memory is read again after this long; batches ending sooner share the reading.
pub(crate) const RESIDENT_EVERY_NS: u64 = 10_000_000;

/// A batch reads the machine when the thread's batch before it took at least this long: the two readings
/// (about 2 µs) are then at most 1% of a batch like it.
pub(crate) const READ_ABOVE_NS: u64 = 200_000;

/// Shorter batches read it one in this many, so that the figures still cover a run of short batches, and
/// a thread whose batches grow longer is seen to.
pub(crate) const SHORT_BATCHES_READ: u64 = 64;

/// Whether the batch a thread begins reads the machine, after a batch of `last_ticks` and `done` batches.
pub(crate) fn worth_reading(last_ticks: u64, done: u64) -> bool {
    clock::to_ns(last_ticks) >= READ_ABOVE_NS || done % SHORT_BATCHES_READ == 0
}

/// A thread's usage at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

impl Usage {
    /// What the thread got between `self` (earlier) and `later`, with the resident memory read now.
    pub(crate) fn until(self, later: Usage, now_ticks: u64) -> BatchMachine {
        BatchMachine {
            cpu_ns: later.cpu_ns.saturating_sub(self.cpu_ns),
            waits: later.voluntary.saturating_sub(self.voluntary),
            preemptions: later.involuntary.saturating_sub(self.involuntary),
            resident_bytes: resident_bytes(now_ticks).unwrap_or(0),
        }
    }
}

/// The calling thread's CPU time and context switches so far. The CPU time is the thread clock's, to the
/// nanosecond: `getrusage`'s is the scheduler's account, which for a running thread lags by up to a tick
/// (4 ms here), so that batches of a few milliseconds read as a third off a CPU while they never left it.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn thread_usage() -> Option<Usage> {
    let mut clock = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes one `timespec` into the pointer it is given, which points at one.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut clock) } != 0 {
        return None;
    }
    let cpu_ns = u64::try_from(clock.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(clock.tv_nsec).unwrap_or(0));
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given, which points at one, and reads
    // nothing else; `RUSAGE_THREAD` asks for the calling thread's.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    Some(Usage {
        cpu_ns,
        voluntary: u64::try_from(usage.ru_nvcsw).unwrap_or(0),
        involuntary: u64::try_from(usage.ru_nivcsw).unwrap_or(0),
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn thread_usage() -> Option<Usage> {
    None
}

/// The latest reading of the resident memory, the largest, and when it was read (ticks, 0 for never).
static RESIDENT: AtomicU64 = AtomicU64::new(0);
static PEAK_RESIDENT: AtomicU64 = AtomicU64::new(0);
static RESIDENT_READ_AT: AtomicU64 = AtomicU64::new(0);

/// The process's resident memory in bytes, read again if the reading kept is older than
/// [`RESIDENT_EVERY_NS`] at `now_ticks`.
pub(crate) fn resident_bytes(now_ticks: u64) -> Option<u64> {
    let read_at = RESIDENT_READ_AT.load(Ordering::Relaxed);
    let fresh = read_at != 0 && clock::to_ns(now_ticks.saturating_sub(read_at)) < RESIDENT_EVERY_NS;
    // One thread reads; the others ending a batch meanwhile take the reading kept.
    if !fresh
        && RESIDENT_READ_AT.compare_exchange(read_at, now_ticks.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        if let Some(bytes) = read_resident() {
            RESIDENT.store(bytes, Ordering::Relaxed);
            PEAK_RESIDENT.fetch_max(bytes, Ordering::Relaxed);
        }
    }
    let bytes = RESIDENT.load(Ordering::Relaxed);
    (bytes > 0).then_some(bytes)
}

/// The latest and the largest resident memory read at a batch's end, if any was.
pub(crate) fn resident() -> Option<(u64, u64)> {
    let bytes = RESIDENT.load(Ordering::Relaxed);
    (bytes > 0).then(|| (bytes, PEAK_RESIDENT.load(Ordering::Relaxed)))
}

/// `/proc/self/statm`'s second field (resident pages) times the page size, read into a buffer on the
/// stack: the slow path of a batch's end allocates nothing here.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_resident() -> Option<u64> {
    use std::io::Read;
    let mut buffer = [0_u8; 128];
    let mut file = std::fs::File::open("/proc/self/statm").ok()?;
    let read = file.read(&mut buffer).ok()?;
    let text = std::str::from_utf8(&buffer[..read]).ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: `sysconf` reads a configuration value and touches no memory of ours.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok().filter(|page| *page > 0)?))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_resident() -> Option<u64> {
    None
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[test]
    fn short_batches_read_the_machine_one_in_sixty_four() {
        let long = 1 << 40;
        assert!(worth_reading(long, 5) && worth_reading(long, 6));
        let read: Vec<u64> = (0..200).filter(|done| worth_reading(0, *done)).collect();
        assert_eq!(read, [0, 64, 128, 192]);
    }

    #[test]
    fn a_thread_that_spins_gets_cpu_time_and_one_that_sleeps_waits() {
        let before = thread_usage().expect("getrusage on Linux");
        let until = std::time::Instant::now() + std::time::Duration::from_millis(20);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        let spun = before.until(thread_usage().expect("getrusage"), clock::now());
        assert!(spun.cpu_ns >= 5_000_000, "{spun:?}");
        let before = thread_usage().expect("getrusage");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let slept = before.until(thread_usage().expect("getrusage"), clock::now());
        assert!(slept.cpu_ns < 5_000_000 && slept.waits >= 1, "{slept:?}");
        assert!(slept.resident_bytes > 1 << 20, "a process has over a MiB resident: {slept:?}");
    }
}
