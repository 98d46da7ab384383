//! What a run measured: per-worker `Tally` counters in the hot loop, and the
//! public, serde-stable `BenchResult` they merge into at the end.
//!
//! `BenchResult` is the `bench --json` document (DESIGN.md) and the value the
//! `compare` command reads; its field names are a contract.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::{HistogramBucket, LatencyHistogram, LatencyMs};

/// A request sent later than this after its scheduled time counts as late.
/// tokio's timer has 1 ms resolution: a connection that waits for its slot
/// wakes up to 1 ms after it, which is the generator's jitter, not a lag.
pub const LATE: Duration = Duration::from_millis(2);

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer within `--timeout` (connection set-up included).
    Timeout,
    /// The TCP connection could not be opened (refused, unreachable).
    Connect,
    /// The server reset or closed the connection before a complete response.
    Reset,
    /// The TLS handshake failed (a certificate not trusted or for another
    /// name, no common protocol version or ALPN protocol).
    Tls,
    /// Anything else (a malformed response, ...).
    Other,
}

/// Failed requests by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub timeout: u64,
    pub connect: u64,
    pub reset: u64,
    /// Absent from results written before HTTPS support: 0.
    #[serde(default)]
    pub tls: u64,
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.timeout + self.connect + self.reset + self.tls + self.other
    }

    fn add(&mut self, kind: ErrorKind) {
        match kind {
            ErrorKind::Timeout => self.timeout += 1,
            ErrorKind::Connect => self.connect += 1,
            ErrorKind::Reset => self.reset += 1,
            ErrorKind::Tls => self.tls += 1,
            ErrorKind::Other => self.other += 1,
        }
    }

    fn merge(&mut self, o: &ErrorCounts) {
        self.timeout += o.timeout;
        self.connect += o.connect;
        self.reset += o.reset;
        self.tls += o.tls;
        self.other += o.other;
    }
}

/// One finished `ocibench bench` run; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub url: String,
    /// `-n` runs: the requested count (= completed + failed). `-z` runs: the
    /// requests counted in the window (completed + failed); requests still in
    /// flight at the deadline are `unfinished`, not counted here.
    pub requests: u64,
    pub concurrency: u64,
    pub keepalive: bool,
    /// Responses received, any status (ab's "Complete requests").
    pub completed: u64,
    /// 2xx responses.
    pub successful: u64,
    pub non_2xx: u64,
    /// Requests that got no response (see `errors`).
    pub failed: u64,
    /// `-z` runs: requests sent but not answered when the run ended (abandoned
    /// at the deadline; neither completed nor failed). Always 0 for `-n` runs.
    #[serde(default)]
    pub unfinished: u64,
    /// Responses per status code ("200", "503", ...).
    pub status_codes: BTreeMap<String, u64>,
    pub errors: ErrorCounts,
    /// Wall time of the measured run (warm-up excluded), monotonic clock.
    pub total_seconds: f64,
    /// completed / total_seconds.
    pub requests_per_second: f64,
    /// ab's "Time per request (mean)": concurrency * total / completed, in ms;
    /// `None` (JSON `null`) without any response: there is no mean of nothing.
    pub mean_ms_per_request: Option<f64>,
    /// ab's "(mean, across all concurrent requests)": total / completed, in ms;
    /// `None` without any response.
    pub mean_ms_across_concurrent: Option<f64>,
    /// Latency of responses and of timed-out requests (at their timeout);
    /// `None` (JSON `null`) when there is neither, never a row of zeros.
    /// Open loop (`rate`): measured from each request's scheduled time, so a
    /// stall delays every request scheduled during it (coordinated omission
    /// corrected, as wrk2 does).
    pub latency_ms: Option<LatencyMs>,
    /// Open loop only (absent in closed loop): the same latencies measured from when each request was
    /// sent, as a closed-loop tool sees them; `None` in closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncorrected_latency_ms: Option<LatencyMs>,
    /// `latency_ms`'s distribution in ten equal-width buckets from min to max
    /// (hey's and oha's histogram); empty without latencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_histogram: Vec<HistogramBucket>,
    /// Open loop only (absent in closed loop): how well the schedule was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateReport>,
    /// Response bytes, status line and headers included (ab's "Total transferred").
    pub bytes_received: u64,
    pub transfer_kib_per_second: f64,
    /// "HTTP/1.1" or "HTTP/2" (older results: HTTP/1.1).
    #[serde(default = "http11")]
    pub http_version: String,
    /// Concurrent streams per connection (`--streams`, HTTP/2); 1 for HTTP/1.1.
    /// ab's mean time per request counts `concurrency * streams` in flight.
    #[serde(default = "one")]
    pub streams: u64,
    /// Connections opened during the measured run (warm-up excluded).
    #[serde(default)]
    pub connections: u64,
    /// Set-up time of those connections: TCP connect, TLS handshake and the
    /// HTTP/2 handshake; `None` (JSON `null`) when none was opened. Request
    /// latency still includes the set-up of a connection opened for it.
    #[serde(default)]
    pub connect_ms: Option<LatencyMs>,
    /// The first TLS failure's reason (e.g. `invalid peer certificate:
    /// UnknownIssuer`), when any handshake failed.
    #[serde(default)]
    pub tls_error: Option<String>,
}

fn http11() -> String {
    "HTTP/1.1".to_string()
}

fn one() -> u64 {
    1
}

/// How an open-loop run kept its schedule (`bench --rate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateReport {
    /// The requested rate, requests per second.
    pub target_per_second: f64,
    /// Requests the schedule held: `-n`, or those due before the `-z` end.
    pub scheduled: u64,
    /// Requests sent. Fewer than `scheduled` when every connection was still
    /// busy at the `-z` end: the rest were never sent.
    pub sent: u64,
    /// sent / total_seconds.
    pub achieved_per_second: f64,
    /// Requests sent more than 2 ms after their scheduled time (`LATE`),
    /// whatever the cause.
    pub late: u64,
    /// Of those, the ones due while every connection was still busy: the
    /// server was slower than the rate (or `-c` too small for it). The rest
    /// left late because the generator itself woke late (a busy machine).
    #[serde(default)]
    pub late_busy: u64,
    /// How far behind its schedule the latest request went out, in ms.
    pub max_lag_ms: f64,
    /// The mean of that delay over all sent requests, in ms.
    pub mean_lag_ms: f64,
    /// Every scheduled request was sent and at most 1% of them late.
    pub kept_up: bool,
}

/// What one worker's schedule did (open loop).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleTally {
    pub scheduled: u64,
    pub sent: u64,
    pub late: u64,
    pub late_busy: u64,
    pub max_lag: Duration,
    pub total_lag: Duration,
}

impl ScheduleTally {
    /// A request went out `lag` after its scheduled time; `busy`: it was
    /// already due when a connection became free for it.
    #[inline]
    pub fn sent(&mut self, lag: Duration, busy: bool) {
        self.sent += 1;
        if lag > LATE {
            self.late += 1;
            self.late_busy += u64::from(busy);
        }
        self.max_lag = self.max_lag.max(lag);
        self.total_lag += lag;
    }

    fn merge(&mut self, o: &ScheduleTally) {
        self.scheduled += o.scheduled;
        self.sent += o.sent;
        self.late += o.late;
        self.late_busy += o.late_busy;
        self.max_lag = self.max_lag.max(o.max_lag);
        self.total_lag += o.total_lag;
    }

    fn report(&self, target: f64, secs: f64) -> RateReport {
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        RateReport {
            target_per_second: target,
            scheduled: self.scheduled,
            sent: self.sent,
            achieved_per_second: if secs > 0.0 {
                self.sent as f64 / secs
            } else {
                0.0
            },
            late: self.late,
            late_busy: self.late_busy,
            max_lag_ms: ms(self.max_lag),
            mean_lag_ms: if self.sent > 0 {
                ms(self.total_lag / u32::try_from(self.sent).unwrap_or(u32::MAX))
            } else {
                0.0
            },
            kept_up: self.sent == self.scheduled && self.late * 100 <= self.sent,
        }
    }
}

/// Counters one worker thread updates in its hot loop (no atomics, no locks).
#[derive(Debug, Clone)]
pub struct Tally {
    pub(crate) latency: LatencyHistogram,
    /// Open loop: latencies from the send (`latency` is from the schedule).
    pub(crate) uncorrected: Option<LatencyHistogram>,
    /// Open loop: the target rate and the schedule's counters.
    target_rate: Option<f64>,
    pub(crate) schedule: ScheduleTally,
    completed: u64,
    successful: u64,
    /// Index = status code (100..=999).
    statuses: Box<[u64; 1000]>,
    errors: ErrorCounts,
    /// Requests cut at the `-z` deadline (sent, never answered within the run).
    unfinished: u64,
    bytes: u64,
    /// Set-up times of the connections opened in the measured run.
    connect: LatencyHistogram,
    connections: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            latency: LatencyHistogram::new(),
            uncorrected: None,
            target_rate: None,
            schedule: ScheduleTally::default(),
            completed: 0,
            successful: 0,
            statuses: Box::new([0; 1000]),
            errors: ErrorCounts::default(),
            unfinished: 0,
            bytes: 0,
            connect: LatencyHistogram::new(),
            connections: 0,
        }
    }

    /// A connection was opened (and handshaken) in `setup`.
    pub fn connection(&mut self, setup: Duration) {
        self.connections += 1;
        self.connect.record(setup);
    }

    /// A response arrived after `latency`, `bytes` long in all.
    #[inline]
    pub fn response(&mut self, status: u16, bytes: u64, latency: Duration) {
        self.completed += 1;
        if (200..300).contains(&status) {
            self.successful += 1;
        }
        self.statuses[usize::from(status).min(999)] += 1;
        self.bytes += bytes;
        self.latency.record(latency);
    }

    /// A request failed; timeouts also enter the latency histogram, at their timeout.
    #[inline]
    pub fn failure(&mut self, kind: ErrorKind, timeout: Option<Duration>) {
        self.errors.add(kind);
        if let (ErrorKind::Timeout, Some(t)) = (kind, timeout) {
            self.latency.record(t);
        }
    }

    /// Open loop: keep uncorrected latencies too, and report the schedule.
    pub fn open_loop(&mut self, target_per_second: f64) {
        self.target_rate = Some(target_per_second);
        self.uncorrected.get_or_insert_with(LatencyHistogram::new);
    }

    /// Open loop: the same request measured from when it was sent.
    #[inline]
    pub fn uncorrected(&mut self, latency: Duration) {
        if let Some(h) = &mut self.uncorrected {
            h.record(latency);
        }
    }

    /// A request was still waiting for its response when the `-z` run ended.
    #[inline]
    pub fn unfinished(&mut self) {
        self.unfinished += 1;
    }

    pub fn merge(&mut self, o: &Tally) {
        self.latency.merge(&o.latency);
        if let Some(u) = &o.uncorrected {
            self.uncorrected
                .get_or_insert_with(LatencyHistogram::new)
                .merge(u);
        }
        self.target_rate = self.target_rate.or(o.target_rate);
        self.schedule.merge(&o.schedule);
        self.completed += o.completed;
        self.successful += o.successful;
        for (a, b) in self.statuses.iter_mut().zip(o.statuses.iter()) {
            *a += b;
        }
        self.errors.merge(&o.errors);
        self.unfinished += o.unfinished;
        self.bytes += o.bytes;
        self.connect.merge(&o.connect);
        self.connections += o.connections;
    }

    /// Counted requests (responses and failures).
    pub fn finished(&self) -> u64 {
        self.completed + self.errors.total()
    }

    /// The public result of a run of `elapsed` at `concurrency`.
    pub fn into_result(
        self,
        url: &str,
        concurrency: u64,
        keepalive: bool,
        elapsed: Duration,
    ) -> BenchResult {
        self.into_parts(url, concurrency, keepalive, elapsed).0
    }

    /// `into_result`, also handing back the latency histogram behind it (moved
    /// out, not cloned: a clone writes every bucket, ~190 KiB).
    pub fn into_parts(
        self,
        url: &str,
        concurrency: u64,
        keepalive: bool,
        elapsed: Duration,
    ) -> (BenchResult, LatencyHistogram) {
        let secs = elapsed.as_secs_f64();
        let per = |x: f64| (self.completed > 0).then(|| x / self.completed as f64);
        let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let status_codes = self
            .statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        let result = BenchResult {
            url: url.to_string(),
            requests: self.finished(),
            concurrency,
            keepalive,
            completed: self.completed,
            successful: self.successful,
            non_2xx: self.completed - self.successful,
            failed: self.errors.total(),
            unfinished: self.unfinished,
            status_codes,
            errors: self.errors,
            total_seconds: secs,
            requests_per_second: rate(self.completed as f64),
            mean_ms_per_request: per(concurrency as f64 * secs * 1000.0),
            mean_ms_across_concurrent: per(secs * 1000.0),
            latency_ms: (!self.latency.is_empty()).then(|| self.latency.summary()),
            uncorrected_latency_ms: self
                .uncorrected
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(LatencyHistogram::summary),
            latency_histogram: self.latency.buckets(10),
            rate: self.target_rate.map(|t| self.schedule.report(t, secs)),
            bytes_received: self.bytes,
            transfer_kib_per_second: rate(self.bytes as f64 / 1024.0),
            http_version: http11(),
            streams: 1,
            connections: self.connections,
            connect_ms: (self.connections > 0).then(|| self.connect.summary()),
            tls_error: None,
        };
        (result, self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_to_result() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        for i in 0..9u16 {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.response(
                if i % 3 == 2 { 503 } else { 200 },
                100,
                Duration::from_millis(2),
            );
        }
        a.failure(ErrorKind::Timeout, Some(Duration::from_millis(50)));
        b.failure(ErrorKind::Reset, Some(Duration::from_millis(50)));
        b.failure(ErrorKind::Connect, None);
        a.merge(&b);
        let r = a.into_result("http://x/", 4, true, Duration::from_secs(2));
        assert_eq!(
            (r.requests, r.completed, r.successful, r.non_2xx, r.failed),
            (12, 9, 6, 3, 3)
        );
        assert_eq!(r.status_codes["200"], 6);
        assert_eq!(r.status_codes["503"], 3);
        assert_eq!(
            r.errors,
            ErrorCounts {
                timeout: 1,
                connect: 1,
                reset: 1,
                tls: 0,
                other: 0
            }
        );
        assert_eq!(r.requests_per_second, 4.5);
        assert_eq!(r.bytes_received, 900);
        assert_eq!(r.transfer_kib_per_second, 900.0 / 1024.0 / 2.0);
        assert!((r.mean_ms_per_request.unwrap() - 4.0 * 2000.0 / 9.0).abs() < 1e-9);
        assert!((r.mean_ms_across_concurrent.unwrap() - 2000.0 / 9.0).abs() < 1e-9);
        // 9 responses at 2 ms and one timeout recorded at 50 ms.
        let l = r.latency_ms.unwrap();
        assert_eq!(l.max, 50.0);
        assert_eq!(l.p50, 2.0, "exact below 2 ms... and at 2 ms");
    }

    #[test]
    fn no_responses_gives_nulls_not_zeros_or_nan() {
        let mut t = Tally::new();
        t.failure(ErrorKind::Connect, None);
        t.unfinished();
        let r = t.into_result("http://x/", 1, true, Duration::from_millis(1));
        assert_eq!(r.mean_ms_per_request, None);
        assert_eq!(r.latency_ms, None);
        assert_eq!((r.requests, r.failed, r.unfinished), (1, 1, 1));
        assert_eq!(r.requests_per_second, 0.0);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"failed\":1"), "{json}");
        assert!(json.contains("\"unfinished\":1"), "{json}");
        assert!(json.contains("\"latency_ms\":null"), "{json}");
        assert!(json.contains("\"mean_ms_per_request\":null"), "{json}");
    }

    #[test]
    fn connections_are_counted_with_their_set_up_time() {
        let mut a = Tally::new();
        a.response(200, 10, Duration::from_millis(3));
        let r = a
            .clone()
            .into_result("http://x/", 1, true, Duration::from_secs(1));
        assert_eq!((r.connections, r.connect_ms), (0, None));
        a.connection(Duration::from_micros(1500));
        let mut b = Tally::new();
        b.connection(Duration::from_micros(500));
        b.failure(ErrorKind::Tls, None);
        a.merge(&b);
        let r = a.into_result("http://x/", 1, true, Duration::from_secs(1));
        assert_eq!(r.connections, 2);
        let c = r.connect_ms.unwrap();
        assert_eq!((c.min, c.max), (0.5, 1.5));
        assert_eq!((r.errors.tls, r.failed), (1, 1));
        assert_eq!((r.http_version.as_str(), r.streams), ("HTTP/1.1", 1));
    }

    #[test]
    fn results_written_before_https_support_still_parse() {
        let mut t = Tally::new();
        t.response(200, 10, Duration::from_millis(3));
        let r = t.into_result("http://x/", 1, true, Duration::from_secs(1));
        let mut v = serde_json::to_value(&r).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in [
            "http_version",
            "streams",
            "connections",
            "connect_ms",
            "tls_error",
        ] {
            o.remove(k).unwrap();
        }
        o["errors"].as_object_mut().unwrap().remove("tls").unwrap();
        let back: BenchResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
