//! The few statistics a candidate's summary needs, on small samples (3 to 10
//! runs): the median and a distribution-free interval for it; and the
//! Mann–Whitney U test, which the report no longer uses to compare candidates
//! (unpaired, it cannot see through round-to-round drift, and with 3 runs each
//! it cannot reach p < 0.05: see `paired`), kept for `ocibench`'s own checks of
//! that claim. No floating-point randomness: the same runs give the same report.
//!
//! Why order statistics and not a bootstrap for the interval: a percentile
//! bootstrap of the median can only return values among the runs, and with
//! 3 to 10 runs it is narrower than its nominal level (it under-covers, most
//! with the fewest runs). The order-statistic interval `[x(k), x(n+1-k)]`
//! covers the true median with a probability known exactly from the binomial
//! distribution, whatever the distribution of the runs (continuous data), so
//! the report can state its actual coverage: 96.9% with 6 runs, but only
//! 93.8% (the range of the runs) with 5, 87.5% with 4 and 75% with 3.

/// The median (the mean of the two middle values for an even count), `None` if empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The median of integers, rounded to the nearest (halves up).
pub fn median_u64(xs: &[u64]) -> Option<u64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        let (a, b) = (v[n / 2 - 1], v[n / 2]);
        a + (b - a).div_ceil(2)
    })
}

/// An interval for the median and the probability that it covers it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianInterval {
    pub low: f64,
    pub high: f64,
    /// Exact coverage of the population median (0 with a single value).
    pub coverage: f64,
}

/// `P(X <= j)` for `X ~ Binomial(n, 1/2)`, summed in log space so large `n` do not underflow.
fn binomial_half_cdf(n: usize, j: usize) -> f64 {
    let ln2 = std::f64::consts::LN_2;
    let mut ln_choose = 0.0_f64; // ln C(n, 0)
    let mut sum = 0.0;
    for i in 0..=j.min(n) {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        sum += (ln_choose - n as f64 * ln2).exp();
    }
    sum.min(1.0)
}

/// The rank `k` (1-based) of the widest-needed order-statistic interval
/// `[x(k), x(n+1-k)]` whose coverage is at least `confidence`, and that coverage.
/// When even the range (`k = 1`) falls short, `k = 1` and its smaller coverage.
pub fn order_statistic_rank(n: usize, confidence: f64) -> (usize, f64) {
    let coverage = |k: usize| 1.0 - 2.0 * binomial_half_cdf(n, k - 1);
    if n == 0 {
        return (1, 0.0);
    }
    let mut best = (1, coverage(1).max(0.0));
    for k in 2..=n.div_ceil(2) {
        let c = coverage(k);
        if c < confidence {
            break;
        }
        best = (k, c);
    }
    best
}

/// The distribution-free interval for the median of `xs` at (at least, when `xs`
/// allows) `confidence`; `None` if empty. See the module header.
pub fn median_interval(xs: &[f64], confidence: f64) -> Option<MedianInterval> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let (k, coverage) = order_statistic_rank(n, confidence);
    Some(MedianInterval {
        low: v[k - 1],
        high: v[n - k],
        coverage,
    })
}

/// The outcome of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample (pairs where it is greater, ties counting half).
    pub u: f64,
    pub p_value: f64,
    /// Exact permutation p-value (ties included) or the normal approximation.
    pub exact: bool,
}

/// Up to this many values in all, the p-value is exact (its counts stay exact in an f64).
pub const EXACT_LIMIT: usize = 40;

/// Two-sided Mann–Whitney U test of `a` against `b`. Exact for up to
/// [`EXACT_LIMIT`] values in all (the permutation distribution of the rank sum,
/// counted by dynamic programming, so ties are handled exactly too); beyond,
/// the normal approximation with tie and continuity corrections.
/// `None` if either sample is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let n = n1 + n2;
    // Pool, sort, and give tied values their mid-rank; ranks are doubled to stay integers.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank2 = vec![0u64; n];
    let mut tie_term = 0.0; // sum of t^3 - t over tie groups
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        for r in &mut rank2[i..=j] {
            *r = (i + j + 2) as u64; // 2 × mean of ranks i+1..=j+1
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let w2: u64 = pooled
        .iter()
        .zip(&rank2)
        .filter(|(p, _)| p.1)
        .map(|(_, r)| r)
        .sum();
    let u = w2 as f64 / 2.0 - (n1 * (n1 + 1)) as f64 / 2.0;

    if n <= EXACT_LIMIT {
        // ways[j][s]: subsets of j pooled values whose doubled ranks sum to s.
        let max_sum: u64 = rank2.iter().sum();
        let width = max_sum as usize + 1;
        let mut ways = vec![vec![0.0_f64; width]; n1 + 1];
        ways[0][0] = 1.0;
        for (seen, &r) in rank2.iter().enumerate() {
            let r = r as usize;
            for j in (1..=n1.min(seen + 1)).rev() {
                let (lo, hi) = ways.split_at_mut(j);
                let (prev, cur) = (&lo[j - 1], &mut hi[0]);
                for s in (r..width).rev() {
                    cur[s] += prev[s - r];
                }
            }
        }
        let mean2 = (n1 * (n + 1)) as i64; // expected doubled rank sum
        let observed = (w2 as i64 - mean2).abs();
        let total: f64 = ways[n1].iter().sum();
        let extreme: f64 = ways[n1]
            .iter()
            .enumerate()
            .filter(|(s, _)| (*s as i64 - mean2).abs() >= observed)
            .map(|(_, w)| w)
            .sum();
        return Some(MannWhitney {
            u,
            p_value: (extreme / total).min(1.0),
            exact: true,
        });
    }

    let (f1, f2, nf) = (n1 as f64, n2 as f64, n as f64);
    let mu = f1 * f2 / 2.0;
    let var = f1 * f2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let p_value = if var <= 0.0 {
        1.0
    } else {
        let z = ((u - mu).abs() - 0.5).max(0.0) / var.sqrt();
        erfc(z / std::f64::consts::SQRT_2).min(1.0)
    };
    Some(MannWhitney {
        u,
        p_value,
        exact: false,
    })
}

/// The smallest two-sided p-value the exact test can give for samples of these
/// sizes (all of one sample above all of the other, no ties): `2 / C(n1 + n2, n1)`.
/// With 3 runs each it is 0.1, so nothing can be significant at 0.05.
pub fn min_p_value(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n, k) = (n1 + n2, n1.min(n2));
    let mut choose = 1.0_f64;
    for i in 0..k {
        choose = choose * (n - i) as f64 / (i + 1) as f64;
    }
    (2.0 / choose).min(1.0)
}

/// Complementary error function (Numerical Recipes' `erfcc`, relative error < 1.2e-7),
/// enough for a p-value.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median_u64(&[10, 1, 4, 5]), Some(5)); // (4 + 5) / 2 rounded up
        assert_eq!(median_u64(&[10, 1, 4]), Some(4));
        assert_eq!(median_u64(&[]), None);
    }

    #[test]
    fn binomial_cdf_known_values() {
        assert!(close(binomial_half_cdf(6, 0), 1.0 / 64.0, 1e-15));
        assert!(close(binomial_half_cdf(9, 1), 10.0 / 512.0, 1e-15));
        assert!(close(binomial_half_cdf(10, 10), 1.0, 1e-12));
        // Large n: no underflow to 0, symmetric around n/2.
        assert!(close(
            binomial_half_cdf(2000, 999),
            0.5 - 0.5 * 0.01783,
            1e-4
        ));
    }

    #[test]
    fn order_statistic_coverage_for_3_to_10_runs() {
        // (n, k, coverage): the largest k whose interval still covers >= 95%,
        // or the range (k = 1) with its smaller coverage.
        let expected = [
            (1, 1, 0.0),
            (2, 1, 0.5),
            (3, 1, 0.75),
            (4, 1, 0.875),
            (5, 1, 0.9375),
            (6, 1, 0.968_75),
            (7, 1, 0.984_375),
            (8, 1, 0.992_187_5),
            (9, 2, 0.960_937_5),
            (10, 2, 0.978_515_625),
            (20, 6, 0.958_610_534_667_968_8),
        ];
        for (n, k, c) in expected {
            let (gk, gc) = order_statistic_rank(n, 0.95);
            assert_eq!(gk, k, "n = {n}");
            assert!(close(gc, c, 1e-12), "n = {n}: {gc} != {c}");
        }
    }

    #[test]
    fn median_interval_picks_order_statistics() {
        let xs = [
            2190.0, 2170.0, 2210.0, 2150.0, 2180.0, 2200.0, 2160.0, 2175.0, 2185.0,
        ];
        let iv = median_interval(&xs, 0.95).unwrap();
        // n = 9, k = 2: the 2nd smallest and the 2nd largest.
        assert_eq!((iv.low, iv.high), (2160.0, 2200.0));
        assert!(close(iv.coverage, 0.960_937_5, 1e-12));
        let one = median_interval(&[5.0], 0.95).unwrap();
        assert_eq!((one.low, one.high, one.coverage), (5.0, 5.0, 0.0));
        assert_eq!(median_interval(&[], 0.95), None);
    }

    #[test]
    fn mann_whitney_scipy_example() {
        // scipy.stats.mannwhitneyu docs: U1 = 17, exact p = 0.1111, asymptotic p = 0.11135.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let r = mann_whitney(&males, &females).unwrap();
        assert_eq!(r.u, 17.0);
        assert!(r.exact);
        assert!(close(r.p_value, 1.0 / 9.0, 1e-12), "{}", r.p_value);
        // The same data through the normal approximation (forced by hand here).
        let (n1, n2) = (5.0_f64, 4.0_f64);
        let sigma = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
        let p = erfc(((17.0 - 10.0) - 0.5) / sigma / std::f64::consts::SQRT_2);
        assert!(close(p, 0.111_346_886_5, 1e-6), "{p}");
    }

    #[test]
    fn mann_whitney_complete_separation() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let r = mann_whitney(&a, &b).unwrap();
        assert_eq!(r.u, 0.0);
        assert!(close(r.p_value, 2.0 / 70.0, 1e-12));
        assert!(close(min_p_value(4, 4), 2.0 / 70.0, 1e-12));
        // Three runs each can never reach 0.05.
        let r3 = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!(close(r3.p_value, 0.1, 1e-12));
        assert!(close(min_p_value(3, 3), 0.1, 1e-12));
        assert!(min_p_value(3, 5) < 0.05);
    }

    #[test]
    fn mann_whitney_identical_samples() {
        let a = [2000.0; 5];
        let r = mann_whitney(&a, &a).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.u, 12.5);
        let big = [1.0; 30];
        let r = mann_whitney(&big, &big).unwrap();
        assert!(!r.exact);
        assert_eq!(r.p_value, 1.0);
    }

    /// The exact p-value by brute force over every split of the pooled values.
    fn brute_force_p(a: &[f64], b: &[f64]) -> f64 {
        let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
        let n = pooled.len();
        let u_of = |mask: u32| {
            let (x, y): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| mask & (1 << i) != 0);
            let mut u = 0.0;
            for &i in &x {
                for &j in &y {
                    u += if pooled[i] > pooled[j] {
                        1.0
                    } else if pooled[i] == pooled[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            u
        };
        let mu = (a.len() * b.len()) as f64 / 2.0;
        let observed = (u_of((1 << a.len()) - 1) - mu).abs();
        let (mut hit, mut total) = (0u32, 0u32);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize == a.len() {
                total += 1;
                if (u_of(mask) - mu).abs() >= observed - 1e-9 {
                    hit += 1;
                }
            }
        }
        f64::from(hit) / f64::from(total)
    }

    #[test]
    fn mann_whitney_exact_with_ties_matches_brute_force() {
        let cases: [(&[f64], &[f64]); 5] = [
            (&[1.0, 1.0, 2.0], &[2.0, 3.0, 3.0]),
            (&[10.0, 10.0, 10.0, 11.0], &[10.0, 12.0, 12.0, 13.0, 9.0]),
            (&[5.0, 6.0, 7.0, 8.0, 9.0], &[1.0, 2.0, 3.0, 4.0, 5.0]),
            (
                &[1.0, 2.0, 2.0, 2.0, 3.0, 4.0],
                &[2.0, 3.0, 3.0, 4.0, 5.0, 6.0],
            ),
            (&[2177.1, 2180.0], &[2187.5, 2031.3, 2161.2]),
        ];
        for (a, b) in cases {
            let r = mann_whitney(a, b).unwrap();
            let want = brute_force_p(a, b);
            assert!(
                close(r.p_value, want, 1e-12),
                "{a:?} {b:?}: {} != {want}",
                r.p_value
            );
        }
    }

    #[test]
    fn mann_whitney_large_samples_use_normal_approximation() {
        let a: Vec<f64> = (0..25).map(f64::from).collect();
        let b: Vec<f64> = (0..25).map(|i| f64::from(i) + 10.0).collect();
        let r = mann_whitney(&a, &b).unwrap();
        assert!(!r.exact);
        // U = 25*25/2 - 10*25 + ... computed by hand: each a_i beats b_j when i > j + 10.
        let u: f64 = (0..25)
            .map(|i| (0..25).filter(|j| i > j + 10).count() as f64)
            .sum::<f64>()
            + (0..25).filter(|i| *i >= 10).count() as f64 * 0.5;
        assert_eq!(r.u, u);
        assert!(r.p_value < 0.01 && r.p_value > 1e-6, "{}", r.p_value);
        assert_eq!(mann_whitney(&[], &[1.0]), None);
    }

    #[test]
    fn erfc_values() {
        assert!(close(erfc(0.0), 1.0, 1e-7));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-7));
        assert!(close(erfc(-1.0), 1.842_700_793, 1e-7));
        assert!(close(erfc(3.0), 2.209_049_7e-5, 1e-9));
    }
}
