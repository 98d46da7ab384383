//! The ab-compatible text report of one load (`ocibench bench`, `ocibench run`):
//! a pure function of a `BenchResult` written into any `io::Write`, so tests
//! render into a `Vec<u8>`. It lives with the other renderers, not in `loadgen`,
//! so the load generator only measures.
//!
//! Lines keep ab's labels (people grep for "Requests per second"), with the
//! additions ab lacks: failed requests by kind, status codes, p99.9, latency
//! spread, milliseconds with microsecond resolution, and requests a `-z` run
//! left unanswered at its end. Without any response the time and latency lines
//! say "no responses" instead of printing zeros.

use std::io::{self, Write};

use crate::loadgen::{BenchResult, HistogramBucket, RateReport};

/// What the time and latency lines say when nothing was answered (wrk prints
/// 0.00us, oha NaN and -inf; neither is a measurement).
const NONE: &str = "no responses";

/// Writes the human report of `r`.
pub fn write_summary<W: Write + ?Sized>(r: &BenchResult, out: &mut W) -> io::Result<()> {
    let (host, port, path) = url_parts(&r.url);
    writeln!(out, "Server Hostname:        {host}")?;
    writeln!(out, "Server Port:            {port}")?;
    writeln!(out)?;
    writeln!(out, "Document Path:          {path}")?;
    writeln!(
        out,
        "Keep-Alive:             {}",
        if r.keepalive { "yes" } else { "no" }
    )?;
    if let Some(rate) = &r.rate {
        writeln!(
            out,
            "Rate:                   {:.2} [#/sec] (target, open loop)",
            rate.target_per_second
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Concurrency Level:      {}", r.concurrency)?;
    writeln!(
        out,
        "Time taken for tests:   {:.3} seconds",
        r.total_seconds
    )?;
    writeln!(out, "Complete requests:      {}", r.completed)?;
    writeln!(out, "Failed requests:        {}", r.failed)?;
    if r.failed > 0 {
        let e = &r.errors;
        writeln!(
            out,
            "   (Connect: {}, Reset: {}, Timeout: {}, Other: {})",
            e.connect, e.reset, e.timeout, e.other
        )?;
    }
    if r.unfinished > 0 {
        writeln!(
            out,
            "Unfinished requests:    {} (still waiting when the run ended)",
            r.unfinished
        )?;
    }
    writeln!(out, "Successful (2xx):       {}", r.successful)?;
    if r.non_2xx > 0 {
        writeln!(out, "Non-2xx responses:      {}", r.non_2xx)?;
    }
    writeln!(out, "Total transferred:      {} bytes", r.bytes_received)?;
    writeln!(
        out,
        "Requests per second:    {:.2} [#/sec] (mean)",
        r.requests_per_second
    )?;
    match (r.mean_ms_per_request, r.mean_ms_across_concurrent) {
        (Some(mean), Some(across)) => {
            writeln!(out, "Time per request:       {mean:.3} [ms] (mean)")?;
            writeln!(
                out,
                "Time per request:       {across:.3} [ms] (mean, across all concurrent requests)"
            )?;
        }
        _ => writeln!(out, "Time per request:       {NONE}")?,
    }
    writeln!(
        out,
        "Transfer rate:          {:.2} [Kbytes/sec] received",
        r.transfer_kib_per_second
    )?;
    if let Some(rate) = &r.rate {
        write_schedule(rate, r.concurrency, out)?;
    }
    writeln!(out)?;

    if !r.status_codes.is_empty() {
        writeln!(out, "Status codes:")?;
        for (code, n) in &r.status_codes {
            writeln!(out, "  {code}: {n}")?;
        }
        writeln!(out)?;
    }

    let Some(l) = &r.latency_ms else {
        // Nothing to summarise: say so rather than print a table of zeros.
        writeln!(out, "Latency (ms):           {NONE}")?;
        return Ok(());
    };
    let open = r.uncorrected_latency_ms.as_ref();
    if open.is_some() {
        writeln!(
            out,
            "Latency (ms), from each request's scheduled time (corrected for coordinated omission):"
        )?;
    }
    writeln!(out, "Latency (ms):   min    mean[+/-sd]      max")?;
    writeln!(
        out,
        "  {:>12.3} {:>8.3} {:>8.3} {:>9.3}",
        l.min, l.mean, l.stddev, l.max
    )?;
    if let Some(u) = open {
        writeln!(
            out,
            "  {:>12.3} {:>8.3} {:>8.3} {:>9.3}   uncorrected (from the send)",
            u.min, u.mean, u.stddev, u.max
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Percentage of the requests served within a certain time (ms)"
    )?;
    if open.is_some() {
        writeln!(out, "         corrected  uncorrected")?;
    }
    let uncorrected = open.map(|u| u.table());
    for (i, (label, v)) in l.table().into_iter().enumerate() {
        let tail = if label == "100%" {
            " (longest request)"
        } else {
            ""
        };
        match &uncorrected {
            Some(u) => writeln!(out, "  {label:>5} {v:>10.3} {:>12.3}{tail}", u[i].1)?,
            None => writeln!(out, "  {label:>5} {v:>10.3}{tail}")?,
        }
    }
    write_histogram(&r.latency_histogram, out)
}

/// How the open-loop schedule was kept, and a plain warning when it was not.
fn write_schedule<W: Write + ?Sized>(
    rate: &RateReport,
    concurrency: u64,
    out: &mut W,
) -> io::Result<()> {
    writeln!(
        out,
        "Schedule:               {} of {} requests sent, {:.2} [#/sec]; {} late (> 2 ms), at most {:.3} ms behind",
        rate.sent, rate.scheduled, rate.achieved_per_second, rate.late, rate.max_lag_ms
    )?;
    if !rate.kept_up {
        let unsent = rate.scheduled - rate.sent.min(rate.scheduled);
        let mut what = format!(
            "Behind schedule:        {concurrency} connection{} could not keep {:.2} [#/sec]: {} request{} went out late, up to {:.3} ms behind",
            if concurrency == 1 { "" } else { "s" },
            rate.target_per_second,
            rate.late,
            if rate.late == 1 { "" } else { "s" },
            rate.max_lag_ms
        );
        if unsent > 0 {
            what.push_str(&format!(", {unsent} never went out"));
        }
        writeln!(out, "{what}")?;
        writeln!(
            out,
            "                        (the latencies include that wait; with more connections, -c, the server itself is tested)"
        )?;
    }
    Ok(())
}

/// hey's histogram: one bar per bucket, its upper edge and count.
fn write_histogram<W: Write + ?Sized>(buckets: &[HistogramBucket], out: &mut W) -> io::Result<()> {
    let most = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    if most == 0 {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Response time histogram (ms):")?;
    let width = buckets
        .iter()
        .map(|b| b.count.to_string().len())
        .max()
        .unwrap_or(1);
    for b in buckets {
        let bar = (b.count * 40).div_ceil(most) as usize;
        writeln!(
            out,
            "  {:>10.3} [{:<width$}] |{}",
            b.upto_ms,
            b.count,
            "■".repeat(bar)
        )?;
    }
    Ok(())
}

/// (host, port, path) of a URL, for ab's header lines; the URL itself if unparsable.
fn url_parts(raw: &str) -> (String, String, String) {
    match url::Url::parse(raw) {
        Ok(u) => {
            let mut path = u.path().to_string();
            if let Some(q) = u.query() {
                path.push('?');
                path.push_str(q);
            }
            (
                u.host_str().unwrap_or("").to_string(),
                u.port_or_known_default()
                    .map_or_else(String::new, |p| p.to_string()),
                path,
            )
        }
        Err(_) => (raw.to_string(), String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::result::Tally;
    use std::time::Duration;

    fn sample() -> BenchResult {
        let mut t = Tally::new();
        for i in 0..30u64 {
            let status = if i % 3 == 2 { 503 } else { 200 };
            t.response(status, 200, Duration::from_millis(i + 1));
        }
        t.failure(crate::loadgen::ErrorKind::Reset, None);
        t.into_result(
            "http://127.0.0.1:8080/x?y=1",
            10,
            true,
            Duration::from_millis(1500),
        )
    }

    #[test]
    fn ab_lines_are_there() {
        let mut buf = Vec::new();
        write_summary(&sample(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        for line in [
            "Server Hostname:        127.0.0.1\n",
            "Server Port:            8080\n",
            "Document Path:          /x?y=1\n",
            "Concurrency Level:      10\n",
            "Time taken for tests:   1.500 seconds\n",
            "Complete requests:      30\n",
            "Failed requests:        1\n",
            "   (Connect: 0, Reset: 1, Timeout: 0, Other: 0)\n",
            "Non-2xx responses:      10\n",
            "Total transferred:      6000 bytes\n",
            "Requests per second:    20.00 [#/sec] (mean)\n",
            "Time per request:       500.000 [ms] (mean)\n",
            "Time per request:       50.000 [ms] (mean, across all concurrent requests)\n",
            "  200: 20\n",
            "  503: 10\n",
            "Percentage of the requests served within a certain time (ms)\n",
            "    50%     15.0",
            "  99.9%     30.000\n",
            "   100%     30.000 (longest request)\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn clean_run_has_no_failure_detail() {
        let mut t = Tally::new();
        t.response(200, 10, Duration::from_millis(1));
        let r = t.into_result("http://localhost/", 1, false, Duration::from_secs(1));
        let mut buf = Vec::new();
        write_summary(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(!text.contains("(Connect:"));
        assert!(!text.contains("Non-2xx"));
        assert!(text.contains("Server Port:            80\n"));
        assert!(text.contains("Keep-Alive:             no\n"));
    }
}
