//! Latency distribution in constant memory: an HdrHistogram per worker, merged
//! at the end, so a run of a billion requests needs no more memory than one of
//! ten (oha's regret is a sample vector that grows with `-n`).
//!
//! Values are microseconds, 3 significant digits, from 1 µs to one hour;
//! longer values saturate at the top instead of being lost.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
const SIGFIGS: u8 = 3;

/// Request latencies of one worker, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    us: Histogram<u64>,
    /// Exact extremes: the histogram only knows their buckets.
    min_us: u64,
    max_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        LatencyHistogram {
            us: Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIGS)
                .expect("static histogram bounds are valid"),
            min_us: u64::MAX,
            max_us: 0,
        }
    }

    /// Records one latency (rounded to the microsecond, at least 1 µs).
    #[inline]
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .max(LOWEST_US);
        self.us.saturating_record(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides: `add` cannot fail.
        self.us
            .add(&other.us)
            .expect("histograms share their bounds");
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.us.len()
    }

    pub fn is_empty(&self) -> bool {
        self.us.is_empty()
    }

    /// The value at quantile `q` (0..=1) in milliseconds, as `summary`
    /// reports its percentiles; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.us.is_empty()).then(|| {
            us_to_ms(
                self.us
                    .value_at_quantile(q.clamp(0.0, 1.0))
                    .clamp(self.min_us, self.max_us),
            )
        })
    }

    /// Summary statistics in milliseconds (all zero when empty).
    pub fn summary(&self) -> LatencyMs {
        if self.us.is_empty() {
            return LatencyMs::default();
        }
        // A quantile is reported as its bucket's upper end, never beyond the true max.
        let q = |q: f64| us_to_ms(self.us.value_at_quantile(q).clamp(self.min_us, self.max_us));
        LatencyMs {
            min: us_to_ms(self.min_us),
            mean: round3(self.us.mean() / 1000.0),
            stddev: round3(self.us.stdev() / 1000.0),
            p50: q(0.50),
            p66: q(0.66),
            p75: q(0.75),
            p80: q(0.80),
            p90: q(0.90),
            p95: q(0.95),
            p98: q(0.98),
            p99: q(0.99),
            p999: q(0.999),
            max: us_to_ms(self.max_us),
        }
    }
}

impl LatencyHistogram {
    /// The distribution in `n` equal-width buckets from min to max, as hey and
    /// oha draw it: bucket i holds the values up to its `upto_ms` (and above
    /// the previous bucket's). Empty when nothing was recorded. Values are
    /// placed by their HdrHistogram bucket (3 significant digits).
    pub fn buckets(&self, n: usize) -> Vec<HistogramBucket> {
        if self.us.is_empty() || n == 0 {
            return Vec::new();
        }
        let (lo, hi) = (self.min_us, self.max_us);
        let width = (hi - lo) as f64 / n as f64;
        let mut counts = vec![0u64; n];
        for v in self.us.iter_recorded() {
            let us = self
                .us
                .median_equivalent(v.value_iterated_to())
                .clamp(lo, hi);
            let i = if width > 0.0 {
                (((us - lo) as f64 / width).ceil() as usize).clamp(1, n) - 1
            } else {
                n - 1
            };
            counts[i] += v.count_at_value();
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| HistogramBucket {
                upto_ms: round3((lo as f64 + width * (i + 1) as f64) / 1000.0),
                count,
            })
            .collect()
    }
}

/// One bar of the latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// The bucket's upper edge, ms.
    pub upto_ms: f64,
    /// Requests whose latency falls in it.
    pub count: u64,
}

/// Latency statistics of a run, in milliseconds (microsecond resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub min: f64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: f64,
    pub p66: f64,
    pub p75: f64,
    pub p80: f64,
    pub p90: f64,
    pub p95: f64,
    pub p98: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyMs {
    /// The ab table's rows: (label, value).
    pub fn table(&self) -> [(&'static str, f64); 10] {
        [
            ("50%", self.p50),
            ("66%", self.p66),
            ("75%", self.p75),
            ("80%", self.p80),
            ("90%", self.p90),
            ("95%", self.p95),
            ("98%", self.p98),
            ("99%", self.p99),
            ("99.9%", self.p999),
            ("100%", self.max),
        ]
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn empty_is_all_zero() {
        let h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.summary(), LatencyMs::default());
    }

    #[test]
    fn percentiles_of_1_to_100_ms() {
        let mut h = LatencyHistogram::new();
        for i in 1..=100 {
            h.record(ms(i));
        }
        let s = h.summary();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(s.min, 1.0), "{s:?}");
        assert!(near(s.p50, 50.0), "{s:?}");
        assert!(near(s.p66, 66.0), "{s:?}");
        assert!(near(s.p90, 90.0), "{s:?}");
        assert!(near(s.p99, 99.0), "{s:?}");
        assert!(near(s.max, 100.0), "{s:?}");
        assert!(near(s.mean, 50.5), "{s:?}");
        assert!((s.stddev - 28.866).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for i in 0..1000u64 {
            let d = Duration::from_micros(i * 37 % 5000 + 1);
            if i % 3 == 0 { &mut a } else { &mut b }.record(d);
            all.record(d);
        }
        let mut merged = LatencyHistogram::new();
        merged.merge(&a);
        merged.merge(&b);
        assert_eq!(merged.len(), 1000);
        assert_eq!(merged.summary(), all.summary());
        a.merge(&b);
        assert_eq!(a.len(), 1000);
        assert_eq!(a.summary(), all.summary());
    }

    #[test]
    fn tiny_and_huge_values_are_kept() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(10));
        h.record(Duration::from_secs(10 * 3600));
        assert_eq!(h.len(), 2);
        let s = h.summary();
        assert_eq!(s.min, 0.001);
        assert_eq!(s.max, 36_000_000.0, "the exact max is kept: {s:?}");
        assert!(s.p50 >= 0.001 && s.p50 <= s.max, "{s:?}");
    }

    #[test]
    fn buckets_split_min_to_max_and_keep_every_count() {
        let mut h = LatencyHistogram::new();
        for i in 1..=100 {
            h.record(ms(i));
        }
        h.record(ms(100));
        let b = h.buckets(10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 101);
        assert_eq!(b[0].upto_ms, 10.9);
        assert_eq!(b[9].upto_ms, 100.0);
        // 1..=10.9 ms: ten values; the last bucket (91.1, 100] holds 91..=100 and the repeat.
        assert_eq!(b[0].count, 10);
        assert_eq!(b[9].count, 11);
        // One value (or many equal ones): one full bucket, the last.
        let mut one = LatencyHistogram::new();
        one.record(ms(5));
        one.record(ms(5));
        let b = one.buckets(10);
        assert_eq!(
            b.iter().map(|b| b.count).collect::<Vec<_>>(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
        assert_eq!(b[9].upto_ms, 5.0);
        assert!(LatencyHistogram::new().buckets(10).is_empty());
    }

    #[test]
    fn microsecond_resolution_below_two_ms() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_micros(1234));
        assert_eq!(h.summary().p50, 1.234);
    }
}
