//! The ab-compatible text report of one load (`ocibench bench`, `ocibench run`):
//! a pure function of a `BenchResult` written into any `io::Write`, so tests
//! render into a `Vec<u8>`. It lives with the other renderers, not in `loadgen`,
//! so the load generator only measures.
//!
//! Lines keep ab's labels (people grep for "Requests per second"), with the
//! additions ab lacks: failed requests by kind, status codes, p99.9, latency
//! spread, milliseconds with microsecond resolution, requests a `-z` run
//! left unanswered at its end, the protocol (HTTP/1.1 or HTTP/2, over TLS or
//! not) and the connections' set-up time, apart from request latency. Without any response the time and latency lines
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
    let https = r.url.starts_with("https:");
    let mut protocol = r.http_version.clone();
    if https {
        protocol.push_str(" over TLS");
    }
    if r.http_version == "HTTP/2" {
        let plural = if r.streams == 1 { "" } else { "s" };
        protocol.push_str(&format!(", {} stream{plural} per connection", r.streams));
    }
    writeln!(out, "Protocol:               {protocol}")?;
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
        let tls = if https || e.tls > 0 {
            format!(", TLS: {}", e.tls)
        } else {
            String::new()
        };
        writeln!(
            out,
            "   (Connect: {}, Reset: {}, Timeout: {}{tls}, Other: {})",
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

    write_latency(r, out)?;
    write_connect(r, out)
}

fn write_latency<W: Write + ?Sized>(r: &BenchResult, out: &mut W) -> io::Result<()> {
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
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let late_free = rate.late - rate.late_busy.min(rate.late);
        if rate.late_busy > 0 || unsent > 0 {
            let mut what = format!(
                "Behind schedule:        {concurrency} connection{} could not keep {:.2} [#/sec]: {} request{} came due while every connection was busy",
                plural(concurrency),
                rate.target_per_second,
                rate.late_busy,
                plural(rate.late_busy),
            );
            if unsent > 0 {
                what.push_str(&format!(", {unsent} never went out"));
            }
            writeln!(out, "{what}")?;
            writeln!(
                out,
                "                        (their latency counts from when they were due; if the server is not the limit, raise -c)"
            )?;
        }
        if late_free > 0 {
            writeln!(
                out,
                "Generator late:         {late_free} request{} left more than 2 ms late with a connection free: this machine's CPU was busy (their latency counts from when they left)",
                plural(late_free),
            )?;
        }
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

/// Connection set-up (TCP, TLS, HTTP/2 handshakes), apart from request latency.
fn write_connect<W: Write + ?Sized>(r: &BenchResult, out: &mut W) -> io::Result<()> {
    writeln!(out)?;
    let Some(c) = &r.connect_ms else {
        return writeln!(
            out,
            "Connect (ms):           no connection opened in the measured run"
        );
    };
    writeln!(
        out,
        "Connect (ms):   min     mean      max      p99   ({} connections)",
        r.connections
    )?;
    writeln!(
        out,
        "  {:>12.3} {:>8.3} {:>8.3} {:>8.3}",
        c.min, c.mean, c.max, c.p99
    )
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
        assert!(text.contains("Protocol:               HTTP/1.1\n"));
        assert!(text.contains("Connect (ms):           no connection opened"));
        assert!(!text.contains("Non-2xx"));
        assert!(text.contains("Server Port:            80\n"));
        assert!(text.contains("Keep-Alive:             no\n"));
    }

    #[test]
    fn http2_over_tls_shows_its_streams_connections_and_tls_failures() {
        let mut t = Tally::new();
        t.response(200, 10, Duration::from_millis(1));
        t.connection(Duration::from_micros(2500));
        t.failure(crate::loadgen::ErrorKind::Tls, None);
        let mut r = t.into_result("https://h:8443/", 2, true, Duration::from_secs(1));
        r.http_version = "HTTP/2".into();
        r.streams = 8;
        let mut buf = Vec::new();
        write_summary(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        for line in [
            "Protocol:               HTTP/2 over TLS, 8 streams per connection\n",
            "   (Connect: 0, Reset: 0, Timeout: 0, TLS: 1, Other: 0)\n",
            "Connect (ms):   min     mean      max      p99   (1 connections)\n",
            "         2.500    2.501    2.500    2.500\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn an_open_loop_run_that_fell_behind_says_why() {
        let mut t = Tally::new();
        t.open_loop(100.0);
        t.schedule.scheduled = 12;
        for i in 0..10u64 {
            // Two due while both connections were busy, one woken late, seven on time.
            let (lag, busy) = match i {
                0 | 1 => (Duration::from_millis(40), true),
                2 => (Duration::from_millis(9), false),
                _ => (Duration::from_micros(300), false),
            };
            t.schedule.sent(lag, busy);
            t.response(200, 10, Duration::from_millis(1));
            t.uncorrected(Duration::from_millis(1));
        }
        let r = t.into_result("http://h/", 2, true, Duration::from_millis(120));
        let rate = r.rate.unwrap();
        assert_eq!((rate.late, rate.late_busy, rate.sent), (3, 2, 10));
        assert!(!rate.kept_up);
        assert_eq!(rate.max_lag_ms, 40.0);
        let mut buf = Vec::new();
        write_summary(&r, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        for line in [
            "Rate:                   100.00 [#/sec] (target, open loop)\n",
            "Schedule:               10 of 12 requests sent, 83.33 [#/sec]; 3 late (> 2 ms), at most 40.000 ms behind\n",
            "Behind schedule:        2 connections could not keep 100.00 [#/sec]: 2 requests came due while every connection was busy, 2 never went out\n",
            "Generator late:         1 request left more than 2 ms late with a connection free",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
