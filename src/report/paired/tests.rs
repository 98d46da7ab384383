use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn t_distribution_matches_reference_values() {
    // Reference: Simpson integration of the t density (200,000 steps) in python3
    // (scipy is not installed here); t(0.975, 4) = 2.776445105197793 from tables.
    let cases = [
        (2.0, 4.0, 0.116_116_523_516_806_7),
        (2.776_445_105_197_793, 4.0, 0.05),
        (1.0, 1.0, 0.5),
        (3.0, 9.0, 0.014_956_363_910_423_76),
        (0.5, 2.0, 0.666_666_666_666_666_7),
        (4.604_094_871_3, 4.0, 0.01),
    ];
    for (t, df, p) in cases {
        let got = t_two_sided_p(t, df);
        assert!(close(got, p, 1e-9), "t = {t}, df = {df}: {got} != {p}");
        assert!(close(t_two_sided_p(-t, df), p, 1e-9));
    }
    assert_eq!(t_two_sided_p(0.0, 4.0), 1.0);
    assert_eq!(t_two_sided_p(f64::INFINITY, 4.0), 0.0);
    // Quantiles from published tables.
    for (df, q) in [
        (1.0, 12.706_204_736),
        (2.0, 4.302_652_730),
        (4.0, 2.776_445_105),
        (9.0, 2.262_157_163),
        (30.0, 2.042_272_456),
    ] {
        let got = t_quantile_two_sided(0.05, df);
        assert!(close(got, q, 1e-8), "df = {df}: {got} != {q}");
    }
}

#[test]
fn paired_ratio_matches_reference_values() {
    // ENVIRONMENT.md's pinned rounds (3.11 bookworm vs 3.9 bullseye), reference
    // from python3 (the log-ratios' mean, sd, t, and the t-interval).
    let a = [3399.0, 4325.0, 3800.0, 4010.0, 3650.0];
    let b = [2809.0, 3499.0, 3200.0, 3350.0, 3010.0];
    let r = paired_ratio(&a, &b, 0.95).unwrap();
    assert_eq!(r.rounds, 5);
    assert!(close(r.ratio, 1.208_537_774_680_886, 1e-12), "{}", r.ratio);
    assert!(close(r.sd_log, 0.015_169_255_403_170_79, 1e-12));
    assert!(close(r.low, 1.185_987_854_564_924, 1e-9), "{}", r.low);
    assert!(close(r.high, 1.231_516_450_365_701, 1e-9), "{}", r.high);
    assert!(
        close(r.p_value, 9.789_059_964_515_6e-6, 1e-10),
        "{}",
        r.p_value
    );
    // Swapping the sides inverts the ratio and keeps the p-value.
    let s = paired_ratio(&b, &a, 0.95).unwrap();
    assert!(close(s.ratio * r.ratio, 1.0, 1e-12));
    assert!(close(s.low * r.high, 1.0, 1e-12));
    assert!(close(s.p_value, r.p_value, 1e-15));

    // No difference: t = 0.8577 on 4 df.
    let a = [2010.0, 1995.0, 2030.0, 1990.0, 2005.0];
    let r = paired_ratio(&a, &[2000.0; 5], 0.95).unwrap();
    assert!(
        close(r.p_value, 0.439_386_218_527_360_9, 1e-9),
        "{}",
        r.p_value
    );
    assert!(r.low < 1.0 && r.high > 1.0);
}

#[test]
fn paired_ratio_edge_cases() {
    assert_eq!(paired_ratio(&[1.0], &[2.0], 0.95), None);
    assert_eq!(paired_ratio(&[], &[], 0.95), None);
    // Rounds where either side served nothing have no ratio; the shorter side bounds the rounds.
    let r = paired_ratio(&[0.0, 2.0, 4.0, 8.0], &[1.0, 1.0, 2.0], 0.95).unwrap();
    assert_eq!(r.rounds, 2);
    assert_eq!((r.ratio, r.low, r.high, r.p_value), (2.0, 2.0, 2.0, 0.0));
    // Identical runs: ratio 1, p = 1.
    let r = paired_ratio(&[5.0; 4], &[5.0; 4], 0.95).unwrap();
    assert_eq!((r.ratio, r.low, r.high, r.p_value), (1.0, 1.0, 1.0, 1.0));
}

#[test]
fn holm_matches_reference_values() {
    // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02.
    let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
    let want = [0.03, 0.06, 0.06, 0.02];
    for (g, w) in adj.iter().zip(want) {
        assert!(close(*g, w, 1e-15), "{adj:?}");
    }
    assert_eq!(holm(&[0.5, 0.9]), vec![1.0, 1.0]);
    assert_eq!(holm(&[0.01, 0.9]), vec![0.02, 0.9]);
    assert_eq!(holm(&[0.04]), vec![0.04]);
    assert!(holm(&[]).is_empty());
}

/// splitmix64: a small deterministic generator, so the simulation is the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// 10,000 simulated experiments of 5 rounds: a true ratio of 1.02, round-to-round
/// drift of ±20% shared by both candidates (a blocked design cancels it), and 3%
/// multiplicative noise per run. The 95% interval must cover 1.02 in 94–96% of them,
/// and a true ratio of 1 must be called significant in 4–6% (the test's size).
#[test]
fn interval_coverage_and_test_size_by_simulation() {
    let mut rng = Rng(13);
    let experiments = 10_000;
    let run = |rng: &mut Rng, truth: f64| -> PairedRatio {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let drift = 3000.0 * (0.2 * rng.normal()).exp();
            a.push(drift * truth * (0.03 * rng.normal()).exp());
            b.push(drift * (0.03 * rng.normal()).exp());
        }
        paired_ratio(&a, &b, 0.95).unwrap()
    };
    let covered = (0..experiments)
        .filter(|_| {
            let r = run(&mut rng, 1.02);
            r.low <= 1.02 && 1.02 <= r.high
        })
        .count();
    let coverage = covered as f64 / f64::from(experiments);
    assert!((0.94..=0.96).contains(&coverage), "coverage {coverage}");
    let rejected = (0..experiments)
        .filter(|_| run(&mut rng, 1.0).p_value < 0.05)
        .count();
    let size = rejected as f64 / f64::from(experiments);
    assert!((0.04..=0.06).contains(&size), "size {size}");
}
