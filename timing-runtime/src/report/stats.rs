//! The few pieces of statistics a comparison of runs needs: Student's t quantiles (for intervals from a
//! handful of runs, where a normal quantile would be far too narrow), and the mean and variance of a sample.

/// The natural logarithm of the gamma function, by Lanczos' approximation (g = 7, nine coefficients):
/// about 15 significant digits for positive arguments, far more than a quantile needs.
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // The reflection formula, for the small arguments (1/2 among them) the series is poor at.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        #[allow(clippy::cast_precision_loss)]
        let index = index as f64;
        sum += coefficient / (x + index);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the regularized incomplete beta function (modified Lentz's method).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for numerator in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))]
        {
            d = 1.0 + numerator * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + numerator / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast on one side of the mean, so the other side is taken by symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The probability that Student's t with `df` degrees of freedom is beyond ±`t`.
fn two_sided_tail(t: f64, df: f64) -> f64 {
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The `t` for which Student's t with `df` degrees of freedom lies beyond ±`t` with probability `alpha`
/// (2.776 for `df` 4 and `alpha` 0.05); infinite when `df` is not positive.
pub(crate) fn t_quantile(df: f64, alpha: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || alpha <= 0.0 {
        return f64::INFINITY;
    }
    // The tail falls as t grows: bisection on a bracket wide enough for one degree of freedom at 1e-9.
    let (mut low, mut high) = (0.0f64, 1e9f64);
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if two_sided_tail(middle, df) > alpha {
            low = middle;
        } else {
            high = middle;
        }
        if high - low < 1e-10 * high.max(1.0) {
            break;
        }
    }
    0.5 * (low + high)
}

/// The mean and the (n − 1) variance of `values`; a variance of 0 for fewer than two.
pub(crate) fn mean_variance(values: &[f64]) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance)
}

#[cfg(test)]
mod tests {
    use super::t_quantile;

    #[test]
    fn t_quantiles_are_the_tables() {
        // Two-sided 95% and 99% points of Student's t, from any statistics table.
        for (df, alpha, expected) in [
            (1.0, 0.05, 12.706),
            (2.0, 0.05, 4.303),
            (4.0, 0.05, 2.776),
            (8.0, 0.05, 2.306),
            (18.0, 0.05, 2.101),
            (30.0, 0.05, 2.042),
            (4.0, 0.01, 4.604),
            (9.0, 0.01, 3.250),
            (1000.0, 0.05, 1.962),
            (9.0, 0.005, 3.690),
        ] {
            let t = t_quantile(df, alpha);
            assert!((t - expected).abs() < 0.002, "df {df}, alpha {alpha}: {t} against {expected}");
        }
        assert!(t_quantile(0.0, 0.05).is_infinite());
    }
}
