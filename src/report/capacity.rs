//! The text report of a rate search (`ocibench bench --find-rate`): each step
//! and the capacity found, a pure function of a `RateSearchResult` written into
//! any `io::Write`.

use std::io::{self, Write};

use crate::loadgen::search::{RateSearchResult, SearchStep, trim_number};

/// Writes the human report of `r`.
pub fn write_search<W: Write + ?Sized>(r: &RateSearchResult, out: &mut W) -> io::Result<()> {
    let p = trim_number(r.slo.percentile);
    writeln!(out, "Capacity of {} at {}", r.url, r.slo.describe())?;
    writeln!(
        out,
        "({} s per step, open loop over {} connection{}, to within {}%)",
        trim_number(r.step_seconds),
        r.concurrency,
        if r.concurrency == 1 { "" } else { "s" },
        trim_number(r.precision * 100.0)
    )?;
    writeln!(out)?;
    let header = format!("p{p} ms");
    writeln!(
        out,
        "  step {:>12} {:>12} {:>12} {:>8}",
        "rate/s", "sent/s", header, "errors"
    )?;
    for (i, s) in r.steps.iter().enumerate() {
        writeln!(out, "{}", step_line(i + 1, s))?;
    }
    writeln!(out)?;
    match (&r.at_found, &r.first_failed) {
        (Some(ok), Some(failed)) if r.converged => {
            writeln!(
                out,
                "Capacity:               {} [#/sec] (within {}%: {} [#/sec] failed)",
                rate(ok.rate),
                trim_number(r.precision * 100.0),
                rate(failed.rate)
            )?;
            write_at(&p, ok, "", out)?;
            write_at(&p, failed, " (the lowest rate that failed)", out)?;
        }
        (Some(ok), Some(failed)) => {
            writeln!(
                out,
                "Capacity:               between {} and {} [#/sec] (the search stopped after {} steps, short of {}%: raise --max-steps)",
                rate(ok.rate),
                rate(failed.rate),
                r.steps.len(),
                trim_number(r.precision * 100.0)
            )?;
            write_at(&p, ok, "", out)?;
            write_at(&p, failed, " (the lowest rate that failed)", out)?;
        }
        (Some(ok), None) => {
            writeln!(
                out,
                "Capacity:               at least {} [#/sec] (every rate tried kept the SLO: start higher with -R, or raise --max-steps)",
                rate(ok.rate)
            )?;
            write_at(&p, ok, "", out)?;
        }
        (None, Some(failed)) => {
            writeln!(
                out,
                "Capacity:               none found: even {} [#/sec] missed the SLO",
                rate(failed.rate)
            )?;
            write_at(&p, failed, "", out)?;
        }
        (None, None) => writeln!(out, "Capacity:               no step was run")?,
    }
    Ok(())
}

fn step_line(n: usize, s: &SearchStep) -> String {
    let pct = s
        .percentile_ms
        .map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let verdict = match &s.reason {
        None => "ok".to_string(),
        Some(why) => format!("failed: {why}"),
    };
    format!(
        "  {n:>4} {:>12} {:>12.1} {pct:>12} {:>7.2}%   {verdict}",
        rate(s.rate),
        s.achieved_per_second,
        s.error_rate * 100.0
    )
}

fn write_at<W: Write + ?Sized>(p: &str, s: &SearchStep, tail: &str, out: &mut W) -> io::Result<()> {
    let v = s
        .percentile_ms
        .map_or_else(|| "no responses".to_string(), |v| format!("{v:.3} ms"));
    writeln!(
        out,
        "  p{p} at {} [#/sec]: {v}, errors {:.2}%{tail}",
        rate(s.rate),
        s.error_rate * 100.0
    )
}

/// A rate as people read it: whole requests per second, decimals below 10.
fn rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        trim_number(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::search::Slo;

    fn step(rate: f64, p99: f64, passed: bool) -> SearchStep {
        SearchStep {
            rate,
            passed,
            percentile_ms: Some(p99),
            error_rate: 0.0,
            achieved_per_second: rate,
            scheduled: 10,
            sent: 10,
            reason: (!passed).then(|| format!("p99 {p99:.3} ms > 50 ms")),
            latency_ms: None,
        }
    }

    #[test]
    fn a_converged_search_names_the_capacity_and_the_rate_that_failed() {
        let steps = vec![
            step(100.0, 1.0, true),
            step(200.0, 80.0, false),
            step(150.0, 9.5, true),
            step(175.0, 60.0, false),
            step(162.5, 20.0, true),
            step(168.75, 40.0, true),
        ];
        let r = RateSearchResult {
            url: "http://127.0.0.1:1/".into(),
            concurrency: 10,
            slo: Slo::parse("p99=50ms").unwrap(),
            precision: 0.05,
            step_seconds: 3.0,
            found_per_second: Some(168.75),
            at_found: Some(steps[5].clone()),
            first_failed: Some(steps[3].clone()),
            converged: true,
            steps,
        };
        let mut buf = Vec::new();
        write_search(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        for line in [
            "Capacity of http://127.0.0.1:1/ at p99 <= 50 ms, errors <= 1%\n",
            "(3 s per step, open loop over 10 connections, to within 5%)\n",
            "     2          200        200.0       80.000    0.00%   failed: p99 80.000 ms > 50 ms\n",
            "Capacity:               169 [#/sec] (within 5%: 175 [#/sec] failed)\n",
            "  p99 at 169 [#/sec]: 40.000 ms, errors 0.00%\n",
            "  p99 at 175 [#/sec]: 60.000 ms, errors 0.00% (the lowest rate that failed)\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
