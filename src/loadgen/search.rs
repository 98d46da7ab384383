//! Capacity at an SLO (`bench --find-rate --slo p99=50ms`): the highest
//! open-loop rate at which a server keeps a latency percentile (and an error
//! rate) within bounds.
//!
//! Each step is an open-loop run of its own (`run` with `--rate`, by time), so
//! its latency is measured from the schedule and a server falling behind shows
//! as growing latency, not as a lower request rate. The rate ramps up by
//! doubling from the start rate until a step fails (or down by halving until
//! one passes), then bisects between the highest rate that passed and the
//! lowest that failed until they are within the stated precision. The number
//! of steps is bounded; a search cut short says so (`converged: false`).
//!
//! The search itself (`bracket`) is a pure function of a step oracle, so its
//! tests need no server.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, LoadConfig, MAX_RATE, Stop};
use super::histogram::LatencyMs;
use super::run::{LoadError, Progress, run_measured};

/// The error rate a step may have when the SLO names none: capacity means
/// answering, not failing fast.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;
/// The precision of the rate found when none is given: 5%.
pub const DEFAULT_PRECISION: f64 = 0.05;
/// The most steps a search takes by default.
pub const DEFAULT_MAX_STEPS: u32 = 20;
/// The rate the ramp starts at by default, requests per second.
pub const DEFAULT_START: f64 = 100.0;
/// Below this rate a search stops looking down: nothing passes.
const MIN_RATE: f64 = 1.0;

/// A service-level objective: a latency percentile bound and an error bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// The percentile, 0 < p <= 100 (99 for `p99`, 99.9 for `p99.9`).
    pub percentile: f64,
    /// Its bound, in milliseconds.
    pub latency_ms: f64,
    /// The largest share of failed and non-2xx requests allowed (0.01 = 1%).
    pub max_error_rate: f64,
}

impl Slo {
    /// Parses `p99=50ms`, `p99.9=200ms,errors=0.1%`, `errors=1%,p50=5ms`.
    pub fn parse(raw: &str) -> Result<Slo, ConfigError> {
        let bad = |reason: &str| ConfigError::BadSlo {
            slo: raw.to_string(),
            reason: reason.to_string(),
        };
        let mut latency = None;
        let mut errors = None;
        for part in raw.split(',').map(str::trim) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(&format!("`{part}` has no `=`")))?;
            let (key, value) = (key.trim(), value.trim());
            if key == "errors" {
                let pct = value
                    .strip_suffix('%')
                    .ok_or_else(|| bad("the error rate is a percentage, such as errors=1%"))?;
                let pct: f64 = pct
                    .trim()
                    .parse()
                    .map_err(|_| bad(&format!("`{value}` is not a percentage")))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(bad("the error rate must be between 0% and 100%"));
                }
                if errors.replace(pct / 100.0).is_some() {
                    return Err(bad("errors is given twice"));
                }
            } else if let Some(p) = key.strip_prefix('p') {
                let p: f64 = p
                    .parse()
                    .map_err(|_| bad(&format!("`{key}` is not a percentile such as p99")))?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(bad(
                        "a percentile is above 0 and at most 100 (p50, p99, p99.9)",
                    ));
                }
                let d = super::config::parse_duration("--slo", value)
                    .map_err(|_| bad(&format!("`{value}` is not a duration such as 50ms")))?;
                if d.is_zero() {
                    return Err(bad("a latency bound must be above zero"));
                }
                if latency.replace((p, d)).is_some() {
                    return Err(bad("give one latency percentile"));
                }
            } else {
                return Err(bad(&format!("unknown objective `{key}`")));
            }
        }
        let (percentile, d) =
            latency.ok_or_else(|| bad("no latency percentile, such as p99=50ms"))?;
        Ok(Slo {
            percentile,
            latency_ms: d.as_secs_f64() * 1000.0,
            max_error_rate: errors.unwrap_or(DEFAULT_MAX_ERROR_RATE),
        })
    }

    /// `p99 <= 50 ms, errors <= 1%`.
    pub fn describe(&self) -> String {
        format!(
            "p{} <= {} ms, errors <= {}%",
            trim_number(self.percentile),
            trim_number(self.latency_ms),
            trim_number(self.max_error_rate * 100.0)
        )
    }
}

/// A precision as written: `5%` (or a bare fraction, `0.05`) as 0.05; `None`
/// when it is neither (the range is `RateSearch::check`'s or the caller's).
pub fn parse_percent(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    match raw.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => raw.parse().ok(),
    }
}

/// `99.0` as `99`, `99.9` as `99.9`.
pub fn trim_number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSearch {
    pub slo: Slo,
    /// The first rate tried, requests per second.
    pub start: f64,
    /// Stop when the lowest failing rate is within this fraction above the
    /// highest passing one (0.05: 5%).
    pub precision: f64,
    /// The most steps taken.
    pub max_steps: u32,
    /// The ramp's first factor (2: doubling). Below 2, each further ramp step
    /// squares it, up to 2: a search started near the answer (`compare`
    /// starts at the previous run's capacity) brackets it in a step or two,
    /// and still gets far quickly when the answer moved. Taken between 1.01
    /// and 2.
    pub ramp: f64,
}

impl RateSearch {
    pub fn new(slo: Slo) -> RateSearch {
        RateSearch {
            slo,
            start: DEFAULT_START,
            precision: DEFAULT_PRECISION,
            max_steps: DEFAULT_MAX_STEPS,
            ramp: 2.0,
        }
    }

    /// Checks the settings (a precision of 0 would never end).
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return Err(ConfigError::BadPrecision {
                precision: self.precision,
            });
        }
        if self.max_steps < 2 {
            return Err(ConfigError::TooFewSteps);
        }
        if !(self.start.is_finite() && (MIN_RATE..=MAX_RATE).contains(&self.start)) {
            return Err(ConfigError::BadRate { rate: self.start });
        }
        Ok(())
    }
}

/// One step of a search: a run at one rate, judged against the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchStep {
    /// The rate tried, requests per second.
    pub rate: f64,
    pub passed: bool,
    /// The SLO's percentile of the corrected latency, ms; `None` without any.
    pub percentile_ms: Option<f64>,
    /// Failed and non-2xx requests over all counted requests.
    pub error_rate: f64,
    /// Requests sent per second.
    pub achieved_per_second: f64,
    pub scheduled: u64,
    pub sent: u64,
    /// Why the step failed, in words; `None` when it passed.
    pub reason: Option<String>,
    /// The step's corrected latency table.
    pub latency_ms: Option<LatencyMs>,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSearchResult {
    pub url: String,
    pub concurrency: u64,
    pub slo: Slo,
    pub precision: f64,
    /// Each step's length, seconds.
    pub step_seconds: f64,
    /// The highest rate that kept the SLO; `None` when none did.
    pub found_per_second: Option<f64>,
    /// The step at that rate.
    pub at_found: Option<SearchStep>,
    /// The lowest rate that failed (`None` when every rate passed: the search
    /// ran out of steps going up).
    pub first_failed: Option<SearchStep>,
    /// Whether the two are within `precision` of each other.
    pub converged: bool,
    /// Every step, in the order run.
    pub steps: Vec<SearchStep>,
}

/// Finds the capacity of `config`'s server at `search.slo`. `config` must be
/// a timed run (`-z`: each step's length); its rate is ignored, its warm-up is
/// sent before the first step only. `on_step` hears of each finished step.
pub fn find_rate(
    config: &LoadConfig,
    search: &RateSearch,
    progress: &Progress,
    on_step: &mut dyn FnMut(&SearchStep),
) -> Result<RateSearchResult, LoadError> {
    find_rate_measured(config, search, progress, &mut |step, _| on_step(step))
}

/// `find_rate`, handing `on_step` each step's whole result too (`compare`
/// keeps the one at the capacity found as its run).
pub fn find_rate_measured(
    config: &LoadConfig,
    search: &RateSearch,
    progress: &Progress,
    on_step: &mut dyn FnMut(&SearchStep, &super::BenchResult),
) -> Result<RateSearchResult, LoadError> {
    let Stop::Duration(step_length) = config.stop else {
        return Err(LoadError::SearchNeedsDuration);
    };
    let mut steps = Vec::new();
    let mut first = true;
    let outcome = bracket(search, |rate| {
        let mut c = config.clone();
        c.rate = Some(rate);
        if !std::mem::take(&mut first) {
            c.warmup = 0;
        }
        let (result, latency) = run_measured(&c, progress)?;
        let step = judge(
            &search.slo,
            rate,
            &result,
            latency.quantile_ms(search.slo.percentile / 100.0),
        );
        on_step(&step, &result);
        let passed = step.passed;
        steps.push(step);
        Ok::<bool, LoadError>(passed)
    })?;
    let at =
        |rate: Option<f64>| rate.and_then(|r| steps.iter().rev().find(|s| s.rate == r).cloned());
    Ok(RateSearchResult {
        url: config.url.clone(),
        concurrency: config.concurrency,
        slo: search.slo,
        precision: search.precision,
        step_seconds: step_length.as_secs_f64(),
        found_per_second: outcome.passed,
        at_found: at(outcome.passed),
        first_failed: at(outcome.failed),
        converged: outcome.converged,
        steps,
    })
}

/// Judges one step's result against the SLO.
fn judge(slo: &Slo, rate: f64, r: &super::BenchResult, percentile_ms: Option<f64>) -> SearchStep {
    let counted = r.requests.max(1);
    let error_rate = (r.failed + r.non_2xx) as f64 / counted as f64;
    let (scheduled, sent, achieved) = r.rate.map_or((0, 0, 0.0), |s| {
        (s.scheduled, s.sent, s.achieved_per_second)
    });
    let p = trim_number(slo.percentile);
    let reason = if r.completed == 0 {
        Some("no responses".to_string())
    } else if sent * 100 < scheduled * 99 {
        // Every connection was busy: the server could not take the rate.
        Some(format!(
            "only {sent} of {scheduled} requests could be sent: every connection was busy"
        ))
    } else if percentile_ms.is_none_or(|v| v > slo.latency_ms) {
        Some(format!(
            "p{p} {:.3} ms > {} ms",
            percentile_ms.unwrap_or(f64::INFINITY),
            trim_number(slo.latency_ms)
        ))
    } else if error_rate > slo.max_error_rate {
        Some(format!(
            "errors {:.2}% > {}%",
            error_rate * 100.0,
            trim_number(slo.max_error_rate * 100.0)
        ))
    } else {
        None
    };
    SearchStep {
        rate,
        passed: reason.is_none(),
        percentile_ms,
        error_rate,
        achieved_per_second: achieved,
        scheduled,
        sent,
        reason,
        latency_ms: r.latency_ms,
    }
}

/// Where a search ended: the highest rate that passed, the lowest that
/// failed, and whether they are within the precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub passed: Option<f64>,
    pub failed: Option<f64>,
    pub converged: bool,
}

/// The search, over any oracle `step(rate) -> passed`: ramp (up from the
/// start by `search.ramp` while it passes, down while it fails, the factor
/// squared each step up to 2), then bisection, at most `max_steps` calls.
pub fn bracket<E>(
    search: &RateSearch,
    mut step: impl FnMut(f64) -> Result<bool, E>,
) -> Result<Bracket, E> {
    let mut passed: Option<f64> = None;
    let mut failed: Option<f64> = None;
    let mut rate = search.start;
    let mut factor = search.ramp.clamp(1.01, 2.0);
    for _ in 0..search.max_steps {
        if step(rate)? {
            passed = Some(passed.map_or(rate, |p| p.max(rate)));
        } else {
            failed = Some(failed.map_or(rate, |f| f.min(rate)));
        }
        rate = match (passed, failed) {
            (Some(p), Some(f)) => {
                if f <= p * (1.0 + search.precision) {
                    break;
                }
                (p + f) / 2.0
            }
            (Some(p), None) if p * factor <= MAX_RATE => p * factor,
            (None, Some(f)) if f / factor >= MIN_RATE => f / factor,
            _ => break,
        };
        factor = (factor * factor).min(2.0);
    }
    let converged =
        matches!((passed, failed), (Some(p), Some(f)) if f <= p * (1.0 + search.precision));
    Ok(Bracket {
        passed,
        failed,
        converged,
    })
}

/// Each step's length when the user gives none.
pub const DEFAULT_STEP: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(raw: &str) -> Slo {
        Slo::parse(raw).unwrap()
    }

    #[test]
    fn slos_parse() {
        assert_eq!(
            slo("p99=50ms"),
            Slo {
                percentile: 99.0,
                latency_ms: 50.0,
                max_error_rate: DEFAULT_MAX_ERROR_RATE
            }
        );
        let s = slo(" errors=0.1% , p99.9=1.5s ");
        assert_eq!((s.percentile, s.latency_ms), (99.9, 1500.0));
        assert!((s.max_error_rate - 0.001).abs() < 1e-12);
        assert_eq!(s.describe(), "p99.9 <= 1500 ms, errors <= 0.1%");
        assert_eq!(slo("p50=250us").latency_ms, 0.25);
        for bad in [
            "",
            "p99",
            "p99=fast",
            "p0=5ms",
            "p101=5ms",
            "q99=5ms",
            "errors=1%",
            "p99=5ms,errors=1",
            "p99=5ms,errors=120%",
            "p99=5ms,p95=1ms",
            "p99=0ms",
        ] {
            assert!(
                matches!(Slo::parse(bad), Err(ConfigError::BadSlo { .. })),
                "{bad}"
            );
        }
    }

    /// A server that keeps the SLO up to `capacity`: the oracle of a known answer.
    fn search_against(capacity: f64, s: RateSearch) -> (Bracket, Vec<f64>) {
        let mut tried = Vec::new();
        let b = bracket(&s, |r| {
            tried.push(r);
            Ok::<_, ()>(r <= capacity)
        })
        .unwrap();
        (b, tried)
    }

    #[test]
    fn ramps_then_bisects_to_the_precision() {
        let s = RateSearch {
            precision: 0.05,
            ..RateSearch::new(slo("p99=50ms"))
        };
        let (b, tried) = search_against(2000.0, s);
        assert_eq!(&tried[..6], &[100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]);
        assert!(b.converged, "{b:?} after {tried:?}");
        let (p, f) = (b.passed.unwrap(), b.failed.unwrap());
        assert!(p <= 2000.0 && f > 2000.0, "{b:?}");
        assert!(f <= p * 1.05, "{b:?}");
        assert!(tried.len() <= 6 + 5, "{tried:?}");
    }

    #[test]
    fn ramps_down_when_the_start_fails() {
        let (b, tried) = search_against(30.0, RateSearch::new(slo("p99=50ms")));
        assert_eq!(&tried[..3], &[100.0, 50.0, 25.0]);
        assert!(b.converged);
        assert!(b.passed.unwrap() <= 30.0 && b.failed.unwrap() > 30.0);
        // Nothing passes: the search stops at the lowest rate, found nothing.
        let (b, tried) = search_against(0.1, RateSearch::new(slo("p99=50ms")));
        assert_eq!(b.passed, None);
        assert_eq!(*tried.last().unwrap(), 1.5625);
        assert!(!b.converged);
    }

    #[test]
    fn the_step_budget_bounds_the_search() {
        let s = RateSearch {
            max_steps: 4,
            ..RateSearch::new(slo("p99=50ms"))
        };
        let (b, tried) = search_against(1e6, s);
        assert_eq!(tried, [100.0, 200.0, 400.0, 800.0]);
        assert_eq!(
            (b.passed, b.failed, b.converged),
            (Some(800.0), None, false)
        );
        let s = RateSearch {
            max_steps: 7,
            precision: 0.001,
            ..RateSearch::new(slo("p99=50ms"))
        };
        let (b, tried) = search_against(1000.0, s);
        assert_eq!(tried.len(), 7);
        assert!(!b.converged, "{b:?}");
        assert!(b.passed.unwrap() <= 1000.0 && b.failed.unwrap() > 1000.0);
    }

    #[test]
    fn a_start_near_the_answer_brackets_it_in_a_few_steps() {
        // compare's later runs start at the previous capacity with a gentle ramp.
        let s = RateSearch {
            start: 1900.0,
            ramp: 1.1,
            ..RateSearch::new(slo("p99=50ms"))
        };
        let (b, tried) = search_against(2000.0, s);
        assert_eq!(tried[..2], [1900.0, 1900.0 * 1.1]);
        assert_eq!(tried.len(), 3, "{tried:?}");
        assert!(b.converged && b.passed.unwrap() <= 2000.0 && b.failed.unwrap() > 2000.0);
        // The ramp speeds up when the answer moved: 1.1, 1.21, 1.46, 2, 2...
        let (b, tried) = search_against(200.0, s);
        let want = [1900.0, 1900.0 / 1.1, 1900.0 / 1.1 / 1.21];
        assert!(
            tried[..3]
                .iter()
                .zip(want)
                .all(|(t, w)| (t - w).abs() < 1e-9)
        );
        assert!(b.converged, "{tried:?}");
        assert!(tried.len() <= 11, "{tried:?}");
        // Nothing passes: down to the lowest rate in a bounded number of steps.
        let (b, tried) = search_against(0.1, s);
        assert_eq!(b.passed, None);
        assert!(tried.len() <= 16, "{tried:?}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = RateSearch::new(slo("p99=50ms"));
        assert!(ok.check().is_ok());
        for bad in [
            RateSearch {
                precision: 0.0,
                ..ok
            },
            RateSearch {
                precision: 1.0,
                ..ok
            },
            RateSearch { max_steps: 1, ..ok },
            RateSearch { start: 0.0, ..ok },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
