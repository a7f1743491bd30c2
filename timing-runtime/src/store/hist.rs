//! A log-linear histogram of durations in ticks: exact below 128, then 64 buckets per power of two, so a
//! bucket's midpoint is within 0.8% of any value in it. Fixed size, whatever the number of values.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::model::Distribution;

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

/// A histogram one thread writes and reports read, kept inline in its counters so that a span's close
/// reaches it without following a pointer.
pub(crate) struct AtomicHistogram {
    buckets: [AtomicU64; BUCKETS],
}

impl AtomicHistogram {
    pub const fn new() -> Self {
        AtomicHistogram { buckets: [const { AtomicU64::new(0) }; BUCKETS] }
    }

    /// Counts `value`; only the owning thread calls this, so a load and a store suffice (and a count of
    /// calls does not reach 2^64, so it wraps rather than saturates).
    #[inline(always)]
    pub fn record(&self, value: u64) {
        if let Some(count) = self.buckets.get(bucket(value)) {
            count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    pub fn clear(&self) {
        self.buckets.iter().for_each(|count| count.store(0, Relaxed));
    }

    pub fn add_to(&self, histogram: &mut Histogram) {
        histogram.ensure();
        for (sum, count) in histogram.counts.iter_mut().zip(self.buckets.iter()) {
            *sum = sum.saturating_add(count.load(Relaxed));
        }
    }
}

/// A histogram of plain counts, for merging and for data written under a lock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Histogram {
    /// Empty until the first value.
    counts: Vec<u64>,
}

impl Histogram {
    fn ensure(&mut self) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
    }

    pub fn record(&mut self, value: u64) {
        self.ensure();
        let count = &mut self.counts[bucket(value)];
        *count = count.saturating_add(1);
    }

    /// The number of values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// Records `n` zeros.
    pub fn add_zeros(&mut self, n: u64) {
        if n > 0 {
            self.ensure();
            self.counts[0] = self.counts[0].saturating_add(n);
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        self.ensure();
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// Percentiles, mean and standard deviation, with every value converted by `to_ns`.
    pub fn distribution(&self, to_ns: impl Fn(u64) -> u64) -> Distribution {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return Distribution::default();
        }
        let quantile = |q: f64| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (bucket, count) in self.counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return to_ns(midpoint(bucket));
                }
            }
            0
        };
        #[allow(clippy::cast_precision_loss)]
        let (sum, sum_squares) = self.counts.iter().enumerate().filter(|(_, count)| **count > 0).fold(
            (0.0, 0.0),
            |(sum, squares), (bucket, count)| {
                let value = to_ns(midpoint(bucket)) as f64;
                (sum + value * *count as f64, squares + value * value * *count as f64)
            },
        );
        #[allow(clippy::cast_precision_loss)]
        let mean = sum / total as f64;
        #[allow(clippy::cast_precision_loss)]
        let variance = (sum_squares / total as f64 - mean * mean).max(0.0);
        let max_bucket = self.counts.iter().rposition(|count| *count > 0).unwrap_or(0);
        Distribution {
            mean_ns: mean,
            p50_ns: quantile(0.50),
            p90_ns: quantile(0.90),
            p95_ns: quantile(0.95),
            p99_ns: quantile(0.99),
            max_ns: to_ns(midpoint(max_bucket)),
            stddev_ns: variance.sqrt(),
        }
    }
}

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
}
