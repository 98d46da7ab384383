//! Open loop (`--rate`) and the SLO search (`--find-rate`) against in-test
//! servers whose behaviour is known: exact counts on a schedule, a schedule
//! that cannot be beaten (never faster than the rate), a stall that corrected
//! latency shows and uncorrected latency hides, and a server of known capacity.
//! Bounds are deterministic consequences of the schedule; the few timing
//! bounds are generous sanity checks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::TestContext;
use crate::support::hyper_server::{HttpServer, Reply};
use ocibench::loadgen::search::RateSearch;
use ocibench::loadgen::{
    BenchResult, LoadConfig, LoadConfigBuilder, Progress, Slo, find_rate, run,
};

fn load(b: LoadConfigBuilder) -> BenchResult {
    run(&b.build().unwrap(), &Progress::new()).unwrap()
}

#[test]
fn a_fixed_rate_sends_exactly_its_schedule() {
    // -n: exactly n requests, whatever the machine does.
    let server = HttpServer::ok();
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(150)
            .rate(300.0)
            .concurrency(4)
            .threads(2),
    );
    let s = r.rate.expect("an open-loop report");
    assert_eq!((s.scheduled, s.sent), (150, 150));
    assert_eq!((r.requests, r.completed, r.successful), (150, 150, 150));
    assert_eq!(server.counts.requests(), 150);
    assert_eq!(s.target_per_second, 300.0);
    // The last of 150 requests at 300/s is due 149/300 s after the first.
    assert!(r.total_seconds >= 149.0 / 300.0, "{}", r.total_seconds);

    // -z: 200/s for 2 s holds exactly 400 slots; each one is sent (and then
    // answered, failed, or cut at the end), none twice.
    let server = HttpServer::ok();
    let r = load(
        LoadConfig::builder(server.url("/"))
            .duration(Duration::from_secs(2))
            .rate(200.0)
            .concurrency(4)
            .threads(2),
    );
    let s = r.rate.unwrap();
    assert_eq!(s.scheduled, 400);
    assert_eq!(s.sent, 400, "four idle connections send every slot: {s:?}");
    assert_eq!(r.requests + r.unfinished, 400);
    assert!(server.counts.requests() <= 400);
    assert!(server.counts.requests() >= r.completed);
    assert!(r.uncorrected_latency_ms.is_some());
}

#[test]
fn the_schedule_is_never_ahead_of_the_rate() {
    // Closed loop, 100 requests to this server take milliseconds; at 100/s
    // the last one is not due before 0.99 s.
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let server_at = HttpServer::start(move |_| {
        seen.lock().unwrap().push(Instant::now());
        Reply::Status(200)
    });
    let started = Instant::now();
    let r = load(
        LoadConfig::builder(server_at.url("/"))
            .requests(100)
            .rate(100.0)
            .concurrency(10)
            .threads(2),
    );
    assert_eq!(r.completed, 100);
    assert!(r.total_seconds >= 0.99, "{}", r.total_seconds);
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 100);
    // Request k is due k/100 s after the start, and never leaves before that:
    // at most k+1 requests have arrived k/100 s after the start.
    let mut sorted: Vec<_> = arrivals.iter().map(|t| *t - started).collect();
    sorted.sort();
    for (k, t) in sorted.iter().enumerate() {
        assert!(
            *t >= Duration::from_secs_f64(k as f64 / 100.0)
                .saturating_sub(Duration::from_millis(1)),
            "request {k} arrived {t:?} after the start"
        );
    }
}

#[test]
fn a_stall_shows_in_corrected_latency_and_hides_in_uncorrected() {
    // The server holds every response for 300 ms once, from the arrival of
    // request 100 (about 0.5 s in at 200/s).
    let stall: Arc<Mutex<Option<Instant>>> = Arc::default();
    let s = stall.clone();
    let server = HttpServer::start(move |n| {
        let mut until = s.lock().unwrap();
        if n == 100 {
            *until = Some(Instant::now() + Duration::from_millis(300));
        }
        match *until {
            Some(t) if Instant::now() < t => Reply::At(t),
            _ => Reply::Status(200),
        }
    });
    // Two connections: a closed-loop tool would send nothing else during the
    // stall and count two slow requests.
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(400)
            .rate(200.0)
            .concurrency(2)
            .threads(1),
    );
    assert_eq!(r.completed, 400);
    let corrected = r.latency_ms.unwrap();
    let uncorrected = r.uncorrected_latency_ms.unwrap();
    // The request that started the stall waited 300 ms after it was sent.
    assert!(corrected.max >= 300.0, "{corrected:?}");
    // Every slot due in the stall's first 200 ms (40 at 200/s, 10% of the
    // run) waited at least 100 ms: p95 shows it.
    assert!(corrected.p95 >= 100.0, "{corrected:?}");
    let s = r.rate.unwrap();
    assert!(s.late >= 39, "{s:?}");
    assert!(
        s.late_busy >= 39,
        "due while both connections were held: {s:?}"
    );
    assert!(s.max_lag_ms >= 250.0, "{s:?}");
    assert!(!s.kept_up);
    // Measured from the send, only the two requests in flight saw the stall.
    assert!(
        uncorrected.p95 < corrected.p95,
        "{uncorrected:?} vs {corrected:?}"
    );
    assert!(uncorrected.max >= 290.0, "{uncorrected:?}");
}

/// A server that answers at most `per_second` requests a second, in order:
/// above that its queue, and so the latency, grows without bound.
fn server_of_capacity(per_second: f64) -> HttpServer {
    let next: Arc<Mutex<Option<Instant>>> = Arc::default();
    let gap = Duration::from_secs_f64(1.0 / per_second);
    HttpServer::start(move |_| {
        let mut next = next.lock().unwrap();
        let now = Instant::now();
        let at = next.map_or(now, |t| t.max(now));
        *next = Some(at + gap);
        Reply::At(at)
    })
}

#[test]
fn find_rate_finds_a_known_capacity() {
    let server = server_of_capacity(200.0);
    let config = LoadConfig::builder(server.url("/"))
        .duration(Duration::from_secs(1))
        .concurrency(20)
        .threads(2)
        .build()
        .unwrap();
    let search = RateSearch {
        start: 50.0,
        precision: 0.1,
        max_steps: 12,
        ..RateSearch::new(Slo::parse("p99=50ms").unwrap())
    };
    let mut heard = 0;
    let r = find_rate(&config, &search, &Progress::new(), &mut |_| heard += 1).unwrap();
    assert_eq!(heard, r.steps.len());
    assert!(r.steps.len() <= 12);
    assert_eq!(r.steps[0].rate, 50.0);
    let found = r.found_per_second.expect("a rate passed");
    // Above 220/s the queue grows by 20+ requests a second, 100+ ms by the
    // end of a step: such a step cannot pass.
    assert!(found <= 220.0, "{found} from {:?}", r.steps);
    assert!(found >= 100.0, "{found} from {:?}", r.steps);
    let failed = r.first_failed.as_ref().expect("a rate failed");
    assert!(r.converged, "{:?}", r.steps);
    assert!(failed.rate <= found * 1.1 + 1e-9);
    assert_eq!(r.at_found.as_ref().unwrap().rate, found);
    assert!(r.at_found.as_ref().unwrap().passed);
    assert!(!failed.passed && failed.reason.is_some());
}

#[test]
fn find_rate_from_the_command_line() {
    let server = server_of_capacity(100.0);
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "--find-rate",
            "--slo",
            "p99=50ms,errors=1%",
            "-z",
            "500ms",
            "-R",
            "40",
            "--precision",
            "25%",
            "-c",
            "10",
            "--json",
        ])
        .success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["slo"]["percentile"], 99.0);
    assert_eq!(v["slo"]["latency_ms"], 50.0);
    assert_eq!(v["slo"]["max_error_rate"], 0.01);
    assert_eq!(v["precision"], 0.25);
    assert_eq!(v["step_seconds"], 0.5);
    assert_eq!(v["steps"][0]["rate"], 40.0);
    let found = v["found_per_second"].as_f64().unwrap();
    assert!((20.0..=125.0).contains(&found), "{found}");
}

#[test]
fn bad_rate_and_search_flags_are_usage_errors_with_hints() {
    let server = HttpServer::ok();
    let url = server.url("/");
    for args in [
        vec!["-R", "0"],
        vec!["-R", "nan"],
        vec!["-R", "1e9"],
        vec!["--find-rate", "--slo", "p99"],
        vec!["--find-rate", "--slo", "fast"],
        vec!["--find-rate", "--slo", "p99=5ms", "-n", "10"],
        vec!["--find-rate", "--slo", "p99=5ms", "--precision", "0%"],
        vec!["--find-rate", "--slo", "p99=5ms", "--max-steps", "1"],
    ] {
        let out = TestContext::new()
            .cmd(["bench", &url])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error:"), "{args:?}: {err}");
        assert!(err.contains("hint:"), "{args:?}: {err}");
    }
    // --slo belongs to --find-rate, and --find-rate needs it (clap's words).
    for args in [vec!["--slo", "p99=5ms"], vec!["--find-rate"]] {
        let out = TestContext::new()
            .cmd(["bench", &url])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(server.counts.requests(), 0, "nothing was sent");
}

#[test]
fn disable_keepalive_is_no_keepalive() {
    let server = HttpServer::ok();
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "-n",
            "12",
            "-c",
            "3",
            "--disable-keepalive",
            "--json",
        ])
        .success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["keepalive"], false);
    assert_eq!(server.counts.connections(), 12);
}

#[test]
fn the_text_report_of_an_open_loop_run_shows_the_schedule_and_both_latencies() {
    let server = HttpServer::ok();
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "-n",
            "50",
            "-R",
            "500",
            "-c",
            "5",
        ])
        .success();
    for needle in [
        "Rate:                   500.00 [#/sec] (target, open loop)\n",
        "Schedule:               50 of 50 requests sent,",
        "Latency (ms), from each request's scheduled time (corrected for coordinated omission):\n",
        "uncorrected (from the send)\n",
        "         corrected  uncorrected\n",
        "Response time histogram (ms):\n",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            out.stdout
        );
    }
}
