//! The overhead budget at run time: which calls of a span name are timed, on each thread, and how often.
//!
//! Under a budget, an ordinary span without a phase of its own is timed 1 in N calls of its name on the
//! thread; the others are counted and pushed as frames (so that the call tree, recursion and the counting
//! allocator see them) without reading the clock, and their time is the estimate of their call path (see
//! `NodeCounters::estimate`). Which calls are timed is random, the gaps between them drawn evenly from 1 to
//! 2N - 1, so that a call site whose calls alternate between long and short ones is not timed on one kind
//! only. N is adapted on each thread at most every `WINDOW_NS`, from the calls it counted since and the
//! calibrated costs of a timed and of an untimed call, so that the instrumentation stays within the budget.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::model::{Budget, BudgetError};
use crate::record::callsite::{self, FAST_NAMES};
use crate::record::charge::{self, Close};
use crate::record::clock;
use crate::store::{allocs, registry};

/// The budget in percent as `f64` bits; 0 without one.
static PERCENT: AtomicU64 = AtomicU64::new(0);
static SEED: Mutex<Option<u64>> = Mutex::new(None);
/// Samplers started since the budget was set: each one's draws differ.
static THREADS: AtomicU64 = AtomicU64::new(0);
/// Cleared when an adaptation found the budget out of reach.
static KEPT: AtomicBool = AtomicBool::new(true);
/// Bumped at every `set`: a thread's sampler starts afresh (its seed, rates and countdowns) at its next
/// slow path after a change, as at a `reset`.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The environment variable has been read.
static FROM_ENV: std::sync::Once = std::sync::Once::new();

/// How often a thread adapts its rates at most, after the first time: long enough to count a few thousand
/// calls of an optimizer's hot loop, short enough to follow a change in it within a fraction of a second.
const WINDOW_NS: u64 = 10_000_000;
/// The first window: every call is timed until the first adaptation, so it is short.
const FIRST_WINDOW_NS: u64 = 1_000_000;
/// The largest N: a gap of up to 2N - 1 calls fits a `u32` countdown with room to spare, and one call in
/// 16,384 still times a name called a million times a second sixty times a second.
const MAX_RATE: u32 = 1 << 14;
/// Timed calls each name keeps per window at the least, so that a rarely called name is not left with an
/// estimate from a handful of calls.
const MIN_TIMED: u32 = 16;

/// Sets the budget; see [`crate::set_budget`].
pub(crate) fn set(budget: Budget) -> Result<(), BudgetError> {
    let budget = budget.checked()?;
    // A budget set in code wins over the environment's, whenever the environment is read.
    FROM_ENV.call_once(|| {});
    install(budget);
    Ok(())
}

fn install(budget: Budget) {
    *SEED.lock() = budget.seed;
    // Threads are numbered afresh, so that a seed gives the same draws to the same threads in the order they
    // first sample after it was set.
    THREADS.store(0, Relaxed);
    GENERATION.fetch_add(1, Relaxed);
    PERCENT.store(budget.percent.unwrap_or(0.0).to_bits(), Relaxed);
    KEPT.store(true, Relaxed);
    registry::set_sampling(budget.percent.is_some());
}

/// The budget in force.
pub(crate) fn current() -> Budget {
    let percent = f64::from_bits(PERCENT.load(Relaxed));
    Budget { percent: (percent > 0.0).then_some(percent), seed: *SEED.lock() }
}

/// Whether every adaptation so far could keep to the budget.
pub(crate) fn kept() -> bool {
    KEPT.load(Relaxed)
}

/// Reads `TIMING_BUDGET` once, unless a budget was set in code first; a value it cannot read is said on
/// standard error and left out (a program that cannot be edited is still timed, exactly).
pub(crate) fn read_environment() {
    FROM_ENV.call_once(|| {
        let Ok(text) = std::env::var("TIMING_BUDGET") else { return };
        match Budget::parse(&text) {
            Ok(budget) => install(budget),
            Err(error) => eprintln!("timing: TIMING_BUDGET ignored: {error}"),
        }
    });
}

/// One span name's sampling on one thread.
pub(crate) struct Site {
    /// Calls left until the next timed one (that one included); 0 or 1: the next call is timed.
    countdown: AtomicU32,
    /// N: one call in this many is timed, on average; 0 before the first adaptation (every call timed).
    rate: AtomicU32,
    /// Calls since the last adaptation.
    seen: AtomicU32,
    /// The calls the current gap spans (the timed one at its end included).
    gap: AtomicU32,
    /// The sum over this name's timed calls of (g - 1)², g the gap each ended: how much each timed call
    /// stands for, which the estimates' variance grows with (see `report::estimate`).
    weights: AtomicU64,
}

/// A thread's sampling state: its sites by span name id, and what its adaptation needs. Written by its
/// thread only (relaxed loads and stores, plain moves); atomics so that a finished thread's can be pooled.
pub(crate) struct Sampler {
    sites: [Site; FAST_NAMES],
    rng: AtomicU64,
    /// Calls timed whatever the budget (those that open a phase) since the last adaptation.
    exact: AtomicU64,
    /// The thread's steps done, and the tick, at the last adaptation.
    steps_at: AtomicU64,
    last: AtomicU64,
    /// The `GENERATION` it started in.
    generation: AtomicU64,
    /// Whether it has adapted since it started.
    adapted: AtomicBool,
    /// The epoch its weights are of.
    epoch: AtomicU64,
}

static POOL: Mutex<Vec<&'static Sampler>> = Mutex::new(Vec::new());
/// Every sampler made, in use or pooled, for reports to read their weights: as many as threads ever ran at
/// once under a budget.
static ALL: Mutex<Vec<&'static Sampler>> = Mutex::new(Vec::new());

/// A sampler for the calling thread: a pooled one, reset, or a new one (96 KiB, taken only under a budget).
pub(crate) fn take() -> &'static Sampler {
    let sampler = POOL.lock().pop().unwrap_or_else(|| {
        let sampler: &'static Sampler = Box::leak(Box::new(Sampler {
            sites: [const {
                Site {
                    countdown: AtomicU32::new(0),
                    rate: AtomicU32::new(0),
                    seen: AtomicU32::new(0),
                    gap: AtomicU32::new(1),
                    weights: AtomicU64::new(0),
                }
            }; FAST_NAMES],
            rng: AtomicU64::new(0),
            exact: AtomicU64::new(0),
            steps_at: AtomicU64::new(0),
            last: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            adapted: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        }));
        ALL.lock().push(sampler);
        sampler
    });
    sampler.reset();
    sampler
}

/// The sum over every sampler of each span name's weights (see `Site::weights`), by name id.
pub(crate) fn weights() -> Vec<u64> {
    let names = callsite::name_count().min(FAST_NAMES);
    let mut sums = vec![0u64; names];
    for sampler in ALL.lock().iter() {
        for (sum, site) in sums.iter_mut().zip(&sampler.sites) {
            *sum = sum.saturating_add(site.weights.load(Relaxed));
        }
    }
    sums
}

/// Gives a sampler back once its thread cannot use it any more.
pub(crate) fn give_back(sampler: &'static Sampler) {
    POOL.lock().push(sampler);
}

impl Sampler {
    /// Starts afresh if the budget was set since it last did, and forgets its weights if `epoch` is a new one
    /// (a reset came).
    pub fn refresh(&self, epoch: u64) {
        if self.generation.load(Relaxed) != GENERATION.load(Relaxed) {
            self.reset();
        }
        if self.epoch.swap(epoch, Relaxed) != epoch {
            self.sites.iter().for_each(|site| site.weights.store(0, Relaxed));
        }
    }

    fn reset(&self) {
        self.generation.store(GENERATION.load(Relaxed), Relaxed);
        self.adapted.store(false, Relaxed);
        for site in &self.sites {
            site.countdown.store(0, Relaxed);
            site.rate.store(0, Relaxed);
            site.seen.store(0, Relaxed);
            site.gap.store(1, Relaxed);
        }
        let thread = THREADS.fetch_add(1, Relaxed);
        let seed = SEED.lock().unwrap_or_else(|| clock::now() ^ 0x5DEE_CE66_D1CE_4E5B);
        // SplitMix64 of seed and thread, so that neighbouring seeds and threads draw unrelated gaps; never 0,
        // which xorshift cannot leave.
        self.rng.store(split_mix(seed ^ split_mix(thread)).max(1), Relaxed);
        self.exact.store(0, Relaxed);
        self.steps_at.store(0, Relaxed);
        self.last.store(clock::now(), Relaxed);
    }

    /// Counts a call of span name `name` and says whether it goes untimed (its countdown is not out).
    #[inline(always)]
    pub fn untimed(&self, name: u32) -> bool {
        let site = &self.sites[name as usize % FAST_NAMES];
        site.seen.store(site.seen.load(Relaxed).wrapping_add(1), Relaxed);
        let left = site.countdown.load(Relaxed);
        if left > 1 {
            site.countdown.store(left - 1, Relaxed);
            return true;
        }
        let ended = u64::from(site.gap.load(Relaxed).saturating_sub(1));
        site.weights.store(site.weights.load(Relaxed).saturating_add(ended * ended), Relaxed);
        self.next_gap(site);
        false
    }

    /// Draws the calls until the next timed one of `site`: evenly from 1 to 2N - 1, N on average.
    fn next_gap(&self, site: &Site) {
        let rate = site.rate.load(Relaxed).max(1);
        let gap = if rate == 1 {
            1
        } else {
            // xorshift64: a few instructions, on the timed calls only.
            let mut x = self.rng.load(Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng.store(x, Relaxed);
            // Below 2^15 by `MAX_RATE`, so the truncation keeps every bit.
            #[allow(clippy::cast_possible_truncation)]
            let drawn = (x % u64::from(2 * rate - 1)) as u32;
            1 + drawn
        };
        site.countdown.store(gap, Relaxed);
        site.gap.store(gap, Relaxed);
    }

    /// Makes every call of span name `name` untimed from now on: for the calibration of an untimed call.
    pub fn force_untimed(&self, name: u32) {
        let site = &self.sites[name as usize % FAST_NAMES];
        site.countdown.store(u32::MAX, Relaxed);
        site.gap.store(1, Relaxed);
    }

    /// Counts a call timed whatever the budget.
    #[inline(always)]
    pub fn count_exact(&self) {
        self.exact.store(self.exact.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Adapts the rates if a window has passed since the last time, at tick `now`, `steps_done` steps done
    /// on the thread (each one a timed call).
    #[inline(always)]
    pub fn adapt_if_due(&self, now: u64, steps_done: u64) {
        let window = now.saturating_sub(self.last.load(Relaxed));
        let due = if self.adapted.load(Relaxed) { WINDOW_NS } else { FIRST_WINDOW_NS };
        if clock::to_ns(window) >= due {
            // What it allocates (the costs' medians) is the runtime's, not the span's it runs in.
            allocs::quiet(|| self.adapt(window, steps_done));
            self.last.store(now, Relaxed);
            self.adapted.store(true, Relaxed);
        }
    }

    /// Chooses each name's N for the next window from what the last one cost: the calls it counted, at the
    /// calibrated costs of a timed call and of an untimed one, against the budget's share of the window.
    /// One N for every name that can be sampled (the same share of each name's calls timed spends the
    /// budget where the calls are), lowered for a name with few calls so that it keeps `MIN_TIMED` of them.
    #[cold]
    #[inline(never)]
    fn adapt(&self, window: u64, steps_done: u64) {
        let percent = f64::from_bits(PERCENT.load(Relaxed));
        let Some(costs) = charge::costs().filter(|_| percent > 0.0) else { return };
        let names = callsite::name_count().min(FAST_NAMES);
        let sites = &self.sites[..names];
        let seen: u64 = sites.iter().map(|site| u64::from(site.seen.load(Relaxed))).sum();
        let exact = self.exact.swap(0, Relaxed) + steps_done.saturating_sub(self.steps_at.swap(steps_done, Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let (seen_f, exact_f, window_f) = (seen as f64, exact as f64, window as f64);
        #[allow(clippy::cast_precision_loss)]
        let timed_cost = (costs.outside[Close::Fast as usize] + costs.inside) as f64;
        #[allow(clippy::cast_precision_loss)]
        let untimed_cost =
            costs.outside[if allocs::counting() { Close::UntimedFramed } else { Close::Untimed } as usize] as f64;
        // What is left once every call is counted and the exact ones timed, for timing the others.
        let left = window_f * percent / 100.0 - exact_f * timed_cost - seen_f * untimed_cost;
        let extra = seen_f * (timed_cost - untimed_cost).max(1.0);
        let rate = if left <= 0.0 {
            KEPT.store(false, Relaxed);
            MAX_RATE
        } else if seen == 0 || left >= extra {
            1
        } else {
            // Between 1 and `MAX_RATE` by the branches above and the `min`.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rate = (extra / left).ceil().min(f64::from(MAX_RATE)) as u32;
            rate
        };
        for site in sites {
            let seen = site.seen.swap(0, Relaxed);
            site.rate.store(rate.min((seen / MIN_TIMED).max(1)), Relaxed);
        }
    }
}

fn split_mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
