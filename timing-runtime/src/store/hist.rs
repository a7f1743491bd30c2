//! A log-linear histogram of durations in ticks: exact below 128, then 64 buckets per power of two, so a
//! bucket's midpoint is within 0.8% of any value in it. The buckets of each power of two (an octave) are
//! allocated when its first value comes, so a histogram costs what its values span: a span name whose
//! calls all take between 1 and 4 µs holds two or three octaves of 512 bytes, not all 39.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release, fence};

use parking_lot::Mutex;

use crate::model::{Distribution, Spread};
use crate::store::arena;

const EXACT: u64 = 128;
const PER_OCTAVE: usize = 64;
/// Values from 2^44 ticks (over an hour and a half at 3 GHz) share the last bucket.
const MAX_SHIFT: u32 = 37;
/// The number of buckets.
pub(crate) const BUCKETS: usize = (MAX_SHIFT as usize + 2) * PER_OCTAVE;

/// Values from here on share the last bucket.
const LARGEST: u64 = (1 << (MAX_SHIFT + 7)) - 1;

/// The bucket of `value`, without a branch: it runs on every span's close. `value | 64` has the leading
/// bit of `value` from 128 on and bit 6 below that, so the shift is 0 for the exact buckets and keeps the 7
/// highest bits above them.
#[inline(always)]
pub(crate) fn bucket(value: u64) -> usize {
    let value = value.min(LARGEST);
    let shift = 57 - (value | 64).leading_zeros();
    ((shift as usize) << 6) + (value >> shift) as usize
}

/// The value a bucket stands for: the middle of the values it holds.
pub(crate) fn midpoint(bucket: usize) -> u64 {
    if bucket < EXACT as usize {
        return bucket as u64;
    }
    let shift = bucket / PER_OCTAVE - 1;
    let mantissa = (bucket % PER_OCTAVE + PER_OCTAVE) as u64;
    (mantissa << shift) + ((1u64 << shift) >> 1)
}

/// Octave slots of an `AtomicHistogram`: the 39 octaves (two exact ones below 128, then one per power of
/// two) rounded up to a power of two, so that the hot path finds its slot without a bounds test.
const OCTAVE_SLOTS: usize = (BUCKETS / PER_OCTAVE).next_power_of_two();

type Octave = [AtomicU64; PER_OCTAVE];

/// A histogram one thread writes and reports read. Only the owning thread writes it, so a count is a load
/// and a store; an octave is allocated once, on its first value, and kept until the process ends (the
/// histogram itself is pooled, see `take`).
pub(crate) struct AtomicHistogram {
    /// The latest duration plus one, not yet counted (0 for none): the thread counts it at its next close,
    /// as counting it at once would wait for the clock (see `Hot`), and reports count it from here
    /// meanwhile, so that an idle thread's last call is not missing from them.
    pending: AtomicU64,
    /// Bit `i` set once octave `i` is allocated: a report reads the octaves in use without touching the
    /// others' cells (reading all 39 was half the cost of reading a histogram).
    in_use: AtomicU64,
    /// Each null until its first value, then a leaked `Box<Octave>`, never changed or freed again.
    octaves: [AtomicPtr<Octave>; OCTAVE_SLOTS],
}

/// Histograms given back by slots that are gone, cleared, for new threads.
static POOL: Mutex<Vec<&'static AtomicHistogram>> = Mutex::new(Vec::new());

/// A zeroed histogram that lives for the process, so that the hot path can hold a plain reference to it.
pub(crate) fn take() -> &'static AtomicHistogram {
    let reused = POOL.lock().pop();
    reused.unwrap_or_else(|| arena::leak(AtomicHistogram::new()))
}

/// Gives histograms back once nothing writes or reads them. Their octaves stay allocated: memory follows
/// the most the process has had at once.
pub(crate) fn give_back(histograms: impl Iterator<Item = &'static AtomicHistogram>) {
    let histograms: Vec<_> = histograms.collect();
    histograms.iter().for_each(|histogram| histogram.clear());
    POOL.lock().extend(histograms);
}

impl AtomicHistogram {
    pub const fn new() -> Self {
        AtomicHistogram {
            pending: AtomicU64::new(0),
            in_use: AtomicU64::new(0),
            octaves: [const { AtomicPtr::new(std::ptr::null_mut()) }; OCTAVE_SLOTS],
        }
    }

    /// Octave `index`, if it is allocated.
    #[inline(always)]
    fn octave(&self, index: usize) -> Option<&Octave> {
        let octave = self.octaves[index % OCTAVE_SLOTS].load(Acquire);
        #[allow(unsafe_code)]
        // SAFETY: a slot holds null or a pointer from `Box::leak` (`grow`), which is never freed nor changed
        // (histograms are pooled for the life of the process, with their octaves), so it is valid and
        // immutable apart from its atomics for the rest of the process; the `Acquire` load pairs with the
        // `Release` store that published it, so its zeroed counts are seen.
        unsafe {
            octave.as_ref()
        }
    }

    /// Allocates octave `index` (owner only).
    #[cold]
    #[inline(never)]
    fn grow(&self, index: usize) -> &Octave {
        if let Some(counts) = self.octave(index) {
            return counts;
        }
        #[cfg(test)]
        grown::count();
        let counts: &'static Octave = arena::leak([const { AtomicU64::new(0) }; PER_OCTAVE]);
        self.octaves[index % OCTAVE_SLOTS].store(std::ptr::from_ref(counts).cast_mut(), Release);
        self.in_use.store(self.in_use.load(Relaxed) | 1 << (index % OCTAVE_SLOTS), Release);
        counts
    }

    /// Counts `value` (owner only); a count of calls does not reach 2^64, so it wraps rather than saturates.
    #[inline(always)]
    pub fn record(&self, value: u64) {
        let bucket = bucket(value);
        let index = bucket / PER_OCTAVE;
        let counts = match self.octave(index) {
            Some(counts) => counts,
            None => self.grow(index),
        };
        let count = &counts[bucket % PER_OCTAVE];
        count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Makes `ticks` the pending duration, to be counted by `count_pending`. Wrapping: a call of 2^64 - 1
    /// ticks (two centuries at 3 GHz) would be left out rather than take an extra test.
    #[inline(always)]
    pub fn hold(&self, ticks: u64) {
        self.pending.store(ticks.wrapping_add(1), Relaxed);
    }

    /// Counts the pending duration, if any.
    #[inline(always)]
    pub fn count_pending(&self) {
        let pending = self.pending.load(Relaxed);
        self.pending.store(0, Relaxed);
        // Cleared before it is counted, and seen in that order (with the fence in `add_many`): a report may
        // miss it for a moment, but never counts it twice.
        fence(Release);
        if pending != 0 {
            self.record(pending - 1);
        }
    }

    /// Counts the pending duration, if any, when its octave is allocated; says whether nothing is left
    /// pending. No allocation and no call: for the hot path, which leaves an octave's first value to the
    /// slow path.
    #[inline(always)]
    pub fn try_count_pending(&self) -> bool {
        let pending = self.pending.load(Relaxed);
        if pending == 0 {
            return true;
        }
        let bucket = bucket(pending - 1);
        let Some(counts) = self.octave(bucket / PER_OCTAVE) else { return false };
        self.pending.store(0, Relaxed);
        // As in `count_pending`.
        fence(Release);
        let count = &counts[bucket % PER_OCTAVE];
        count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
        true
    }

    pub fn clear(&self) {
        self.pending.store(0, Relaxed);
        for counts in (0..OCTAVE_SLOTS).filter_map(|index| self.octave(index)) {
            counts.iter().for_each(|count| count.store(0, Relaxed));
        }
        // The octaves stay allocated and marked: counting into them again needs no allocation.
    }

    /// Adds the counts, and the pending duration, to `histogram`: work in proportion to the octaves in use.
    pub fn add_to(&self, histogram: &mut Histogram) {
        add_many(&[(0, self)], std::slice::from_mut(histogram));
    }

    /// Copies of the octaves in use, as `(slot, octave, counts)`.
    fn copy_octaves(&self, slot: usize, copies: &mut Vec<(usize, usize, [u64; PER_OCTAVE])>) {
        let mut in_use = self.in_use.load(Acquire);
        while in_use != 0 {
            let index = in_use.trailing_zeros() as usize;
            in_use &= in_use - 1;
            if let Some(counts) = self.octave(index) {
                copies.push((slot, index, std::array::from_fn(|bucket| counts[bucket].load(Relaxed))));
            }
        }
    }
}

/// Adds each `(slot, histogram)` of `sources`, pending durations included, to `into[slot]`. Every octave is
/// copied before any is added: the copies are loads only, which the processor overlaps, where adding each
/// octave as it was read waited for each octave's first line in turn (a third of a report's time over 64
/// threads' histograms).
pub(crate) fn add_many(sources: &[(usize, &AtomicHistogram)], into: &mut [Histogram]) {
    let mut copies = Vec::new();
    for (slot, histogram) in sources {
        histogram.copy_octaves(*slot, &mut copies);
    }
    fence(Acquire);
    let pending: Vec<(usize, u64)> =
        sources.iter().map(|(slot, histogram)| (*slot, histogram.pending.load(Relaxed))).collect();
    for (slot, index, counts) in copies {
        let Some(histogram) = into.get_mut(slot) else { continue };
        for (sum, count) in histogram.octave(index).iter_mut().zip(counts) {
            *sum = sum.saturating_add(count);
        }
    }
    for (slot, pending) in pending {
        if let (Some(histogram), true) = (into.get_mut(slot), pending != 0) {
            histogram.record(pending - 1);
        }
    }
}

/// A histogram made on its first value (a phase's spread, when the phase is first seen), reached with one
/// load and no test beyond null: a `OnceLock` added a test of its state to every step's phases.
pub(crate) struct LazyHistogram(AtomicPtr<AtomicHistogram>);

impl LazyHistogram {
    pub const fn new() -> Self {
        LazyHistogram(AtomicPtr::new(std::ptr::null_mut()))
    }

    pub fn get(&self) -> Option<&AtomicHistogram> {
        let histogram = self.0.load(Acquire);
        #[allow(unsafe_code)]
        // SAFETY: null, or a pointer from `Box::leak` (`make`), never freed nor changed: valid for the rest of
        // the process; the `Acquire` load pairs with the `Release` store that published it.
        unsafe {
            histogram.as_ref()
        }
    }

    /// The histogram, made now if it is not yet (owner only).
    #[inline(always)]
    pub fn get_or_make(&self) -> &AtomicHistogram {
        match self.get() {
            Some(histogram) => histogram,
            None => self.make(),
        }
    }

    #[cold]
    #[inline(never)]
    fn make(&self) -> &AtomicHistogram {
        let histogram: &'static AtomicHistogram = arena::leak(AtomicHistogram::new());
        self.0.store(std::ptr::from_ref(histogram).cast_mut(), Release);
        histogram
    }
}

/// A histogram of plain counts, for merging and for data written under a lock; octaves allocated on use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Histogram {
    /// By octave; empty until the first value.
    octaves: Vec<Option<Box<[u64; PER_OCTAVE]>>>,
}

impl Histogram {
    /// An empty histogram, for a `static`.
    pub const fn new() -> Self {
        Histogram { octaves: Vec::new() }
    }

    fn octave(&mut self, index: usize) -> &mut [u64; PER_OCTAVE] {
        if self.octaves.len() <= index {
            self.octaves.resize(index + 1, None);
        }
        self.octaves[index].get_or_insert_with(|| Box::new([0; PER_OCTAVE]))
    }

    /// `(bucket, count)` of every non-empty bucket, in bucket order.
    fn counts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.octaves.iter().enumerate().filter_map(|(index, counts)| Some((index, counts.as_deref()?))).flat_map(
            |(index, counts)| {
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(move |(offset, count)| (index * PER_OCTAVE + offset, *count))
            },
        )
    }

    pub fn record(&mut self, value: u64) {
        let bucket = bucket(value);
        let count = &mut self.octave(bucket / PER_OCTAVE)[bucket % PER_OCTAVE];
        *count = count.saturating_add(1);
    }

    /// The number of values recorded.
    pub fn count(&self) -> u64 {
        self.counts().fold(0u64, |sum, (_, count)| sum.saturating_add(count))
    }

    /// Records `n` zeros.
    pub fn add_zeros(&mut self, n: u64) {
        if n > 0 {
            let zeros = &mut self.octave(0)[0];
            *zeros = zeros.saturating_add(n);
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (index, counts) in other.octaves.iter().enumerate() {
            let Some(counts) = counts else { continue };
            for (mine, theirs) in self.octave(index).iter_mut().zip(counts.iter()) {
                *mine = mine.saturating_add(*theirs);
            }
        }
    }

    /// Each non-empty bucket as its middle value converted by `to_ns`, with its count; buckets that convert to
    /// the same value are one.
    pub fn spread(&self, to_ns: impl Fn(u64) -> u64) -> Spread {
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        for (bucket, count) in self.counts() {
            let value = to_ns(midpoint(bucket));
            match buckets.last_mut() {
                Some((last, sum)) if *last == value => *sum = sum.saturating_add(count),
                _ => buckets.push((value, count)),
            }
        }
        Spread { buckets }
    }

    /// Percentiles, mean and standard deviation, with every value converted by `to_ns`.
    pub fn distribution(&self, to_ns: impl Fn(u64) -> u64) -> Distribution {
        let total = self.count();
        if total == 0 {
            return Distribution::default();
        }
        // Ranks of the quantiles, in increasing order, so that one pass over the buckets finds them all.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = |q: f64| ((q * total as f64).ceil() as u64).clamp(1, total);
        let ranks = [rank(0.50), rank(0.90), rank(0.95), rank(0.99)];
        let mut found = [0u64; 4];
        let (mut seen, mut next) = (0u64, 0);
        let (mut sum, mut sum_squares, mut max_bucket) = (0.0, 0.0, 0);
        for (bucket, count) in self.counts() {
            seen = seen.saturating_add(count);
            let value = to_ns(midpoint(bucket));
            while next < ranks.len() && seen >= ranks[next] {
                found[next] = value;
                next += 1;
            }
            #[allow(clippy::cast_precision_loss)]
            let (value, count) = (value as f64, count as f64);
            sum += value * count;
            sum_squares += value * value * count;
            max_bucket = bucket;
        }
        #[allow(clippy::cast_precision_loss)]
        let mean = sum / total as f64;
        #[allow(clippy::cast_precision_loss)]
        let variance = (sum_squares / total as f64 - mean * mean).max(0.0);
        Distribution {
            mean_ns: mean,
            p50_ns: found[0],
            p90_ns: found[1],
            p95_ns: found[2],
            p99_ns: found[3],
            max_ns: to_ns(midpoint(max_bucket)),
            stddev_ns: variance.sqrt(),
        }
    }
}

#[cfg(test)]
crate::store::thread_counter!(
    /// Octaves allocated by this thread, for tests that must tell a close sent to the slow path by a new
    /// octave from one sent there for another reason.
    grown
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for value in (0..1_000_000u64).chain((20..44).map(|shift| (1u64 << shift) + 12_345)) {
            let index = bucket(value);
            assert!(index >= last && index < BUCKETS, "{value} -> {index} after {last}");
            last = index;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    /// The formula the branch-free `bucket` must agree with, written the plain way.
    fn plain_bucket(value: u64) -> usize {
        if value < EXACT {
            return value as usize;
        }
        let shift = (63 - value.leading_zeros() - 6).min(MAX_SHIFT);
        let mantissa = (value >> shift).min(2 * PER_OCTAVE as u64 - 1) as usize;
        shift as usize * PER_OCTAVE + mantissa
    }

    #[test]
    fn the_branch_free_bucket_is_the_plain_one() {
        let edges = (0..64).flat_map(|bit| {
            let power = 1u64 << bit;
            [power - 1, power, power + 1, power.wrapping_mul(3) / 2]
        });
        for value in (0..100_000u64).chain(edges).chain([u64::MAX, LARGEST, LARGEST + 1]) {
            assert_eq!(bucket(value), plain_bucket(value), "{value}");
        }
    }

    #[test]
    fn a_bucket_midpoint_is_within_a_percent_of_its_values() {
        for value in (0..200_000u64).step_by(7).chain((1..40).map(|shift| (3u64 << shift) / 2 + shift)) {
            let middle = midpoint(bucket(value));
            assert!(middle.abs_diff(value) * 128 <= value.max(1), "{value} stands as {middle}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_where_they_should_be() {
        let mut histogram = Histogram::default();
        for value in 1..=100_000u64 {
            histogram.record(value * 10);
        }
        let distribution = histogram.distribution(|ticks| ticks);
        for (actual, expected) in [
            (distribution.p50_ns, 500_000),
            (distribution.p90_ns, 900_000),
            (distribution.p95_ns, 950_000),
            (distribution.p99_ns, 990_000),
        ] {
            assert!(actual.abs_diff(expected) * 100 <= expected, "{actual} for {expected}");
        }
        // The standard deviation of a uniform spread over [0, 1e6] is 1e6 / sqrt(12).
        assert!((distribution.stddev_ns - 288_675.0).abs() < 2_900.0, "{distribution:?}");
    }

    /// Values from a seeded generator, so that a failure repeats.
    fn generator(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss)]
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            unit
        }
    }

    /// A duration from two uniform numbers in [0, 1).
    type Shape = fn(f64, f64) -> f64;

    /// Four shapes of duration, 100,000 values each: narrow (10 µs ± 2%), wide (log-uniform over eight
    /// powers of ten), bimodal (500 and 500,000, ± 10%) and heavy-tailed (Pareto, shape 1.1).
    fn distributions() -> Vec<(&'static str, Vec<u64>)> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let shapes: [(&str, Shape); 4] = [
            ("narrow", |u, _| 10_000.0 * (0.98 + 0.04 * u)),
            ("wide", |u, _| 10f64.powf(1.0 + 8.0 * u)),
            ("bimodal", |u, v| if v < 0.5 { 500.0 } else { 500_000.0 } * (0.9 + 0.2 * u)),
            ("heavy-tailed", |u, _| 1_000.0 / (1.0 - u).max(1e-12).powf(1.0 / 1.1)),
        ];
        shapes
            .iter()
            .zip(1u64..)
            .map(|((name, shape), seed)| {
                let (mut u, mut v) = (generator(seed), generator(seed * 7_919));
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let values = (0..100_000).map(|_| shape(u(), v()).min(1e15) as u64).collect();
                (*name, values)
            })
            .collect()
    }

    /// The exact value at quantile `q` of sorted `values`: the one of rank ceil(q n), as the histogram ranks.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn assert_within_a_percent(name: &str, distribution: &Distribution, values: &[u64]) {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let max = sorted.last().copied().unwrap_or(0);
        let pairs = [
            ("p50", distribution.p50_ns, exact(&sorted, 0.50)),
            ("p90", distribution.p90_ns, exact(&sorted, 0.90)),
            ("p95", distribution.p95_ns, exact(&sorted, 0.95)),
            ("p99", distribution.p99_ns, exact(&sorted, 0.99)),
            ("max", distribution.max_ns, max),
        ];
        for (label, reported, exact) in pairs {
            assert!(reported.abs_diff(exact) * 100 <= exact, "{name} {label}: {reported} for {exact}");
        }
    }

    #[test]
    fn percentiles_are_within_a_percent_of_the_exact_values() {
        for (name, values) in distributions() {
            let histogram = AtomicHistogram::new();
            values.iter().for_each(|value| histogram.record(*value));
            let mut read = Histogram::default();
            histogram.add_to(&mut read);
            assert_eq!(read.count(), values.len() as u64);
            assert_within_a_percent(name, &read.distribution(|ticks| ticks), &values);
        }
    }

    #[test]
    fn histograms_merged_over_threads_and_paths_are_as_exact_as_one() {
        for (name, values) in distributions() {
            // 64 parts, as 8 threads x 8 call paths of one name, each with its own histogram.
            let parts: Vec<AtomicHistogram> = (0..64).map(|_| AtomicHistogram::new()).collect();
            let whole = AtomicHistogram::new();
            for (index, value) in values.iter().enumerate() {
                parts[index * 7 % 64].record(*value);
                whole.record(*value);
            }
            let mut merged = Histogram::default();
            for part in &parts {
                let mut one = Histogram::default();
                part.add_to(&mut one);
                merged.merge(&one);
            }
            let mut single = Histogram::default();
            whole.add_to(&mut single);
            assert_eq!(merged, single, "{name}");
            assert_within_a_percent(name, &merged.distribution(|ticks| ticks), &values);
        }
    }

    #[test]
    fn a_histogram_holds_only_the_octaves_its_values_reach() {
        let histogram = AtomicHistogram::new();
        for value in 1_000..4_000 {
            histogram.record(value);
        }
        // 1,000 to 3,999 span the octaves from 512 to 4,095: three of them.
        assert_eq!(histogram.in_use.load(Relaxed).count_ones(), 3);
        histogram.hold(1 << 40);
        assert_eq!(histogram.in_use.load(Relaxed).count_ones(), 3, "a held duration takes no octave yet");
        assert!(!histogram.try_count_pending(), "the hot path leaves a new octave to the slow path");
        histogram.count_pending();
        assert_eq!(histogram.in_use.load(Relaxed).count_ones(), 4);
        let mut read = Histogram::default();
        histogram.add_to(&mut read);
        assert_eq!(read.count(), 3_001);
    }
}
