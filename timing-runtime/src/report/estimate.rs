//! How far the times of a run under an overhead budget may be from those of timing every call: 95%
//! intervals for each span name. (Phase times need none: a call not timed has its caller's phase, and
//! what its estimate gives it is taken from its caller, so a phase keeps the time spent in it.)
//!
//! A call that was not timed counts as its call path's estimate, a moving average of the path's timed calls
//! (`NodeCounters::estimate`). The error of a name's estimated time has two parts: each untimed call's own
//! deviation from the mean (variance s² for each of the U untimed calls), and the estimates' error, which
//! the untimed calls after a timed one share: a timed call that ended a gap of g calls stands for about
//! g - 1 untimed ones, a variance of (g - 1)² s². So the name's time has a variance of about
//! s² (U + sum of (g - 1)²), s the standard deviation of its timed durations (of a whole call, used for
//! its self time too, which it bounds in the workloads measured here) and the sum kept by the samplers
//! (`budget::weights`). With the moving average smoothing the gaps, which vary at random, the sum is a
//! third over what the smoothed weights give: the margin is a little wider than need be, never narrower.

use crate::store::tree::MergedTree;

/// 1.96: the normal distribution's two-sided 95% quantile.
const Z95: f64 = 1.96;

/// The variance (in ticks²) of the estimated time of each span name, by name id, from the merged tree, the
/// standard deviation of each name's timed durations in ticks, and the samplers' weights of each name.
pub(crate) fn variances(tree: &MergedTree, deviations: &[f64], weights: &[u64]) -> Vec<f64> {
    tree.names
        .iter()
        .enumerate()
        .map(|(name, totals)| {
            if totals.untimed == 0 {
                return 0.0;
            }
            let deviation = deviations.get(name).copied().unwrap_or(0.0);
            #[allow(clippy::cast_precision_loss)]
            let stand_for = totals.untimed as f64 + weights.get(name).copied().unwrap_or(0) as f64;
            deviation * deviation * stand_for
        })
        .collect()
}

/// The 95% margin, in ticks, of an estimate of variance `variance` (ticks²).
pub(crate) fn margin_ticks(variance: f64) -> u64 {
    // Finite and non-negative by construction; `as` saturates anyway.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ticks = (Z95 * variance.max(0.0).sqrt()).round() as u64;
    ticks
}
