//! The warnings a careful reader would add to a comparison: too few runs
//! for an interval or a test, a load generator that may have been the limit,
//! failed requests and non-2xx responses; and (`limits`) what limited a run
//! when neither side was saturated, and isolation that could not be had.

use std::collections::BTreeSet;

use super::stats;
use super::units::{coverage, percent};
use super::{
    CandidateSummary, GENERATOR_LIMIT_SHARE, INTERVAL_CONFIDENCE, Isolation,
    MIN_RUNS_FOR_SIGNIFICANCE,
};

/// Warnings about `cands`; `ranked` are those with runs, `rps` each one's requests/s.
pub(super) fn warnings(
    cands: &[CandidateSummary],
    ranked: &[usize],
    rps: &[Vec<f64>],
) -> Vec<String> {
    let mut w = Vec::new();
    for c in cands.iter().filter(|c| c.runs.is_empty()) {
        w.push(format!(
            "{}: no runs; it is left out of the comparison",
            c.name
        ));
    }
    let n_of = |i: usize| rps[i].len();
    let all_same = |n: usize| ranked.iter().all(|&i| n_of(i) == n);
    let names_with = |n: usize| {
        ranked
            .iter()
            .filter(|&&i| n_of(i) == n)
            .map(|&i| cands[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };

    // Too few runs for an interval or a test.
    if !ranked.is_empty() && all_same(1) {
        w.push(
            "a single run per candidate: no interval for the median and no significance \
             test; set repeats to 5 or more"
                .into(),
        );
    } else {
        for &i in ranked {
            match n_of(i) {
                1 => w.push(format!(
                    "{}: a single run: no interval for its median and no significance test",
                    cands[i].name
                )),
                n if n < MIN_RUNS_FOR_SIGNIFICANCE => w.push(format!(
                    "{}: only {n} runs; with fewer than {MIN_RUNS_FOR_SIGNIFICANCE}, no \
                     difference is judged significant",
                    cands[i].name
                )),
                _ => {}
            }
        }
    }

    // Intervals below the coverage sought.
    let counts: BTreeSet<usize> = ranked.iter().map(|&i| n_of(i)).collect();
    for &n in &counts {
        let (_, cov) = stats::order_statistic_rank(n, INTERVAL_CONFIDENCE);
        if n >= 2 && cov < INTERVAL_CONFIDENCE {
            let who = if all_same(n) {
                format!("with {n} runs per candidate")
            } else {
                format!("{}: with {n} runs", names_with(n))
            };
            w.push(format!(
                "{who}, the interval for the median is the range of the runs and covers it \
                 with only {} confidence (6 runs give 96.9%)",
                coverage(cov)
            ));
        }
    }

    for c in cands {
        if let Some(share) = c
            .generator_cpu_share
            .filter(|&s| s >= GENERATOR_LIMIT_SHARE)
        {
            w.push(format!(
                "the load generator, not the service, may have been the limit for {0} \
                 (it used {1} of its CPU time, median over runs); results may understate {0}",
                c.name,
                percent(share)
            ));
        }
    }

    for c in cands {
        let n = c.runs.len();
        let failed: Vec<u64> = c.runs.iter().map(|r| r.failed).filter(|&f| f > 0).collect();
        let non2xx: Vec<u64> = c
            .runs
            .iter()
            .map(|r| r.non_2xx)
            .filter(|&f| f > 0)
            .collect();
        let mut parts = Vec::new();
        if !failed.is_empty() {
            parts.push(format!(
                "{} of {n} runs had failed requests ({} in all; not counted in requests/s)",
                failed.len(),
                failed.iter().sum::<u64>()
            ));
        }
        if !non2xx.is_empty() {
            parts.push(format!(
                "{} of {n} runs had non-2xx responses ({} in all; counted in requests/s)",
                non2xx.len(),
                non2xx.iter().sum::<u64>()
            ));
        }
        if !parts.is_empty() {
            w.push(format!("{}: {}", c.name, parts.join("; ")));
        }
    }
    w
}

/// Capacity searches to doubt: runs in which no rate kept the SLO (they
/// count 0), searches cut short of their precision, and first failing steps
/// that the load's connections could not send (Little's law: `c` connections
/// at rate R allow at most c / R seconds per request; below the SLO's bound,
/// the connections, not the service, ran out).
pub(super) fn capacities(cands: &[CandidateSummary]) -> Vec<String> {
    let mut w = Vec::new();
    for c in cands {
        let Some(cap) = &c.capacity else { continue };
        let n = cap.runs_per_second.len();
        let zero = cap.runs_per_second.iter().filter(|&&v| v <= 0.0).count();
        if zero > 0 {
            let slo = cap
                .searches
                .first()
                .map_or_else(|| "the SLO".to_string(), |s| s.slo.describe());
            let lowest = cap
                .searches
                .iter()
                .flat_map(|s| s.steps.iter().map(|t| t.rate))
                .fold(f64::INFINITY, f64::min);
            let tried = if lowest.is_finite() {
                format!(
                    " (the lowest rate tried: {} req/s)",
                    super::units::rate(lowest)
                )
            } else {
                String::new()
            };
            w.push(format!(
                "{}: in {zero} of {n} runs no rate kept {slo}{tried}; those runs count a capacity of 0",
                c.name
            ));
        }
        let short = cap
            .searches
            .iter()
            .filter(|s| s.found_per_second.is_some() && !s.converged)
            .count();
        if short > 0 {
            w.push(format!(
                "{}: {short} of {n} capacity searches stopped before reaching their precision; their capacity is a lower bound",
                c.name
            ));
        }
        let starved: Vec<(f64, u64, f64)> = cap
            .searches
            .iter()
            .filter_map(|s| {
                let f = s.first_failed.as_ref()?;
                let busy = f.sent * 100 < f.scheduled * 99;
                let needed = f.rate * s.slo.latency_ms / 1000.0;
                (busy && (s.concurrency as f64) < needed).then_some((f.rate, s.concurrency, needed))
            })
            .collect();
        if let Some(&(rate, conns, needed)) = starved.first() {
            w.push(format!(
                "{}: in {} of {n} runs the first rate that failed could not be sent: all {conns} connections were busy, and at {} req/s the SLO's latency needs up to {} in flight; the load's connections may have limited the capacity, not the service (raise [load] concurrency)",
                c.name,
                starved.len(),
                super::units::rate(rate),
                needed.ceil()
            ));
        }
    }
    w
}

/// Below this share of its CPUs (service) or of its CPU time (generator), a
/// side was not the limit of the run.
pub const SATURATED: f64 = 0.8;

/// Mean latencies in this range (ms), with an idle service, point at Nagle's
/// algorithm meeting the peer's delayed ACK (40 ms on Linux).
const DELAYED_ACK_MS: std::ops::RangeInclusive<f64> = 35.0..=50.0;

/// Isolation asked for and not had, and, per candidate, a run whose limit was
/// neither the service's CPUs nor the load generator's.
pub(super) fn limits(cands: &[CandidateSummary], isolation: &Isolation) -> Vec<String> {
    let mut w = Vec::new();
    if isolation.requested && !isolation.applied {
        w.push(format!(
            "the service and the load generator could not be isolated (only {} CPU \
             available): they shared it, which can hide differences between bases",
            isolation.service_cpus.len().max(1)
        ));
    }
    let cores = isolation.service_cpus.len();
    if cores == 0 {
        return w; // Which CPUs the service had is unknown: no basis for a verdict.
    }
    for c in cands.iter().filter(|c| !c.runs.is_empty()) {
        let (Some(service), Some(generator)) = (c.service_cpu_percent, c.generator_cpu_share)
        else {
            continue;
        };
        let service_share = service / (100.0 * cores as f64);
        if service_share >= SATURATED || generator >= SATURATED {
            continue;
        }
        let cpus = if cores == 1 {
            "its CPU".to_string()
        } else {
            format!("its {cores} CPUs")
        };
        let mut msg = format!(
            "{}: neither side was saturated (the service used {} of {cpus}, the load \
             generator {} of its CPU time, medians over runs): the limit was likely the \
             service's own concurrency, the network path, the generator's connection count \
             (concurrency), or a Nagle/delayed-ACK stall (latency clustered near 40 ms with \
             an idle service)",
            c.name,
            percent(service_share),
            percent(generator)
        );
        if DELAYED_ACK_MS.contains(&c.latency_ms.mean) {
            msg.push_str(&format!(
                "; its mean latency, {:.1} ms, is near the 40 ms delayed-ACK timer: a stall \
                 is likely (does the service set TCP_NODELAY?)",
                c.latency_ms.mean
            ));
        }
        w.push(msg);
    }
    w
}

/// Cold starts that were not cold: layers of the image were in podman's
/// storage already (shared with an image the node had), so the pull neither
/// fetched nor unpacked them.
pub(super) fn cold_starts(cands: &[CandidateSummary]) -> Vec<String> {
    cands
        .iter()
        .filter_map(|c| {
            let cold = c.cold_start.as_ref()?;
            (cold.layers_present > 0).then(|| {
                format!(
                    "{}: {} of its layers were in podman's storage already (shared with an \
                     image on this machine), so its cold start leaves out their pull; remove \
                     that image for a fully cold start",
                    c.name, cold.layers_present
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{analyze, sample};

    fn isolated() -> Isolation {
        Isolation {
            requested: true,
            applied: true,
            service_cpus: vec![1],
            generator_cpus: vec![0],
        }
    }

    /// One candidate summary with the given service CPU % and generator share.
    fn summary(service: Option<f64>, generator: Option<f64>, latency: f64) -> CandidateSummary {
        let mut c = analyze(sample::input(vec![sample::candidate(
            "a",
            50,
            20,
            &[100.0, 101.0],
        )]))
        .candidates
        .remove(0);
        c.service_cpu_percent = service;
        c.generator_cpu_share = generator;
        c.latency_ms.mean = latency;
        c
    }

    #[test]
    fn an_idle_service_and_an_idle_generator_name_the_other_limits() {
        let w = limits(&[summary(Some(30.0), Some(0.2), 2.0)], &isolated());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("a: neither side was saturated"), "{w:?}");
        assert!(w[0].contains("the service used 30% of its CPU"), "{w:?}");
        assert!(w[0].contains("Nagle/delayed-ACK"), "{w:?}");
        assert!(!w[0].contains("near the 40 ms"), "{w:?}");
    }

    #[test]
    fn latency_near_40_ms_points_at_a_delayed_ack_stall() {
        let w = limits(&[summary(Some(3.0), Some(0.05), 44.1)], &isolated());
        assert!(
            w[0].contains("44.1 ms, is near the 40 ms delayed-ACK timer"),
            "{w:?}"
        );
    }

    #[test]
    fn a_saturated_side_or_unknown_figures_give_no_warning() {
        let busy_service = summary(Some(95.0), Some(0.3), 2.0);
        let busy_generator = summary(Some(40.0), Some(0.85), 2.0);
        let unknown = summary(None, Some(0.1), 2.0);
        assert!(limits(&[busy_service, busy_generator, unknown], &isolated()).is_empty());
        // Two service CPUs: 120% of one core is 60% of them, not saturated.
        let two = Isolation {
            service_cpus: vec![2, 3],
            generator_cpus: vec![0, 1],
            ..isolated()
        };
        let w = limits(&[summary(Some(120.0), Some(0.3), 2.0)], &two);
        assert!(w[0].contains("60% of its 2 CPUs"), "{w:?}");
        // Unknown CPUs (reports from before isolation): no verdict.
        assert!(limits(&[summary(Some(5.0), Some(0.1), 2.0)], &Isolation::default()).is_empty());
    }

    #[test]
    fn isolation_asked_for_on_one_cpu_warns() {
        let one = Isolation {
            requested: true,
            applied: false,
            service_cpus: vec![0],
            generator_cpus: vec![0],
        };
        let w = limits(&[], &one);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("could not be isolated (only 1 CPU"), "{w:?}");
        let off = Isolation {
            requested: false,
            ..one
        };
        assert!(limits(&[], &off).is_empty());
    }
}
