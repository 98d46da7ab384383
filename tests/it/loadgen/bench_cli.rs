//! `ocibench bench` as users run it: the built binary against in-test servers.
//! Checks the `--json` document's exact shape, the text report, and that bad
//! input gives `error:` + `hint:` and exit status 2.

use std::collections::BTreeSet;
use std::process::Output;

use crate::support::TestContext;
use crate::support::hyper_server::{HttpServer, RawServer, Reply, closed_port_url};

fn bench(args: &[&str]) -> Output {
    TestContext::new()
        .cmd(["bench"])
        .args(args)
        .output()
        .expect("run ocibench")
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn json_has_exactly_the_documented_fields() {
    let server = HttpServer::start(|n| Reply::Status(if n % 3 == 2 { 503 } else { 200 }));
    let url = server.url("/x");
    let out = bench(&[&url, "-n", "30", "-c", "4", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(
        keys(&v),
        set(&[
            "url",
            "requests",
            "concurrency",
            "keepalive",
            "completed",
            "successful",
            "non_2xx",
            "failed",
            "unfinished",
            "status_codes",
            "errors",
            "total_seconds",
            "requests_per_second",
            "mean_ms_per_request",
            "mean_ms_across_concurrent",
            "latency_ms",
            "latency_histogram",
            "bytes_received",
            "transfer_kib_per_second",
            "http_version",
            "streams",
            "connections",
            "connect_ms",
            "tls_error",
        ])
    );
    // Ten buckets holding every latency: the 30 responses.
    let buckets = v["latency_histogram"].as_array().unwrap();
    assert_eq!(buckets.len(), 10);
    assert_eq!(keys(&buckets[0]), set(&["upto_ms", "count"]));
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 30);
    assert_eq!(
        keys(&v["errors"]),
        set(&["timeout", "connect", "reset", "tls", "other"])
    );
    assert_eq!(
        keys(&v["connect_ms"]),
        keys(&v["latency_ms"]),
        "connect_ms has latency_ms's shape"
    );
    assert_eq!(
        keys(&v["latency_ms"]),
        set(&[
            "min", "mean", "stddev", "p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99",
            "p999", "max"
        ])
    );
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["requests"], 30);
    assert_eq!(v["concurrency"], 4);
    assert_eq!(v["keepalive"], true);
    assert_eq!(v["completed"], 30);
    assert_eq!(v["successful"], 20);
    assert_eq!(v["non_2xx"], 10);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["unfinished"], 0);
    assert_eq!(
        (&v["http_version"], &v["streams"]),
        (&"HTTP/1.1".into(), &1.into())
    );
    assert_eq!(v["tls_error"], serde_json::Value::Null);
    assert_eq!(v["status_codes"], serde_json::json!({"200": 20, "503": 10}));
    assert!(v["requests_per_second"].as_f64().unwrap() > 0.0);
    // The library type reads its own document back (the compare command does).
    let r: ocibench::loadgen::BenchResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.completed, 30);
    assert_eq!(server.counts.requests(), 30);
    assert_eq!(v["connections"], server.counts.connections());
    assert!(v["connect_ms"]["max"].as_f64().unwrap() > 0.0);
}

#[test]
fn connections_opened_in_warm_up_are_not_counted() {
    let server = HttpServer::ok();
    let out = bench(&[
        &server.url("/"),
        "-n",
        "20",
        "-c",
        "2",
        "--warmup",
        "10",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(server.counts.connections() >= 1);
    // Kept alive from the warm-up: none opened in the measured run.
    assert_eq!(v["connections"], 0);
    assert_eq!(v["connect_ms"], serde_json::Value::Null);
    let out = bench(&[
        &server.url("/"),
        "-n",
        "12",
        "-c",
        "3",
        "--no-keepalive",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"], 12, "one per request");
}

#[test]
fn text_report_is_ab_like() {
    let server = HttpServer::ok();
    let out = bench(&[
        &server.url("/"),
        "-n",
        "25",
        "-c",
        "5",
        "--no-keepalive",
        "--warmup",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Concurrency Level:      5\n",
        "Complete requests:      25\n",
        "Failed requests:        0\n",
        "Keep-Alive:             no\n",
        "Requests per second:",
        "Time per request:",
        "(mean, across all concurrent requests)",
        "Transfer rate:",
        "Percentage of the requests served within a certain time (ms)",
        "(longest request)",
        "  200: 25\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert_eq!(server.counts.requests(), 30, "warm-up reaches the server");
    assert_eq!(server.counts.connections(), 30);
}

#[test]
fn all_refused_reports_then_exits_1() {
    let url = closed_port_url();
    let out = bench(&[&url, "-n", "5", "-c", "2", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is still printed");
    assert_eq!(v["failed"], 5);
    assert_eq!(v["errors"]["connect"], 5);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("error: every connection was refused"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn bad_input_gives_error_hint_and_exit_2() {
    let server = HttpServer::ok();
    let url = server.url("/");
    let cases: &[&[&str]] = &[
        &["not a url"],
        &["https://127.0.0.1:1/", "--streams", "2"],
        &[&url, "--http2", "--no-keepalive"],
        &["https://127.0.0.1:1/", "--cacert", "/nonexistent/ca.pem"],
        &[&url, "-c", "0"],
        &[&url, "-n", "0"],
        &[&url, "-n", "10", "-z", "1s"],
        &[&url, "-z", "ten seconds"],
        &[&url, "--timeout", "1 fortnight"],
        &[&url, "-H", "no colon here"],
        &[&url, "-D", "/nonexistent/ocibench-body"],
    ];
    for args in cases {
        let out = bench(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("\nhint: "), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(server.counts.requests(), 0, "bad input sends nothing");
}

/// A server that accepts connections and never answers: a timed run must say its
/// requests were unfinished (never zeros), and nothing answered is exit status 1.
#[test]
fn timed_run_against_a_silent_server_reports_unfinished_and_exits_1() {
    let server = HttpServer::start(|_| Reply::Hang);
    let url = server.url("/");
    let out = bench(&[&url, "-z", "300ms", "-c", "3", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is still printed");
    assert_eq!(v["completed"], 0, "{v:#}");
    assert_eq!(v["failed"], 0, "{v:#}");
    assert_eq!(v["unfinished"], 3, "{v:#}");
    assert!(v["latency_ms"].is_null(), "no latency, not zeros: {v:#}");
    assert!(v["mean_ms_per_request"].is_null(), "{v:#}");
    assert!(v["mean_ms_across_concurrent"].is_null(), "{v:#}");
    assert!(err.contains("error: no request got a response"), "{err}");
    assert!(err.contains("3 unfinished"), "{err}");
    assert!(err.contains("hint: "), "{err}");

    let out = bench(&[&url, "-z", "300ms", "-c", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Unfinished requests:    2 (still waiting when the run ended)\n"),
        "{text}"
    );
    assert!(
        text.contains("Latency (ms):           no responses\n"),
        "{text}"
    );
    assert!(!text.contains("0.000"), "no made-up zeros:\n{text}");
}

/// `bench ARGS` with RLIMIT_NOFILE set to `soft`/`hard` (as `ulimit -Sn`/`-Hn`).
fn bench_with_fd_limit(soft: u64, hard: u64, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let ctx = TestContext::new();
    let mut cmd = ctx.cmd(["bench"]);
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe; only the child's limits change.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run ocibench")
}

#[test]
fn concurrency_above_the_hard_fd_limit_is_bad_input() {
    let server = HttpServer::ok();
    let out = bench_with_fd_limit(256, 256, &[&server.url("/"), "-z", "200ms", "-c", "1000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("hint: lower -c"), "{err}");
    assert_eq!(server.counts.requests(), 0, "refused before any request");
}

#[test]
fn concurrency_above_the_soft_fd_limit_raises_it() {
    let server = HttpServer::ok();
    let out = bench_with_fd_limit(
        64,
        4096,
        &[&server.url("/"), "-n", "400", "-c", "400", "--json"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], 400, "{v:#}");
    assert_eq!(v["failed"], 0, "no EMFILE: {v:#}");
}

#[test]
fn ports_out_of_range_are_bad_input() {
    for url in [
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:0/",
        "http://localhost:65536/",
    ] {
        let out = bench(&[url, "-n", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains("hint: "), "{url}: {err}");
    }
}

/// The scheduling policy of each `loadgen-*` thread of the running process
/// `pid` (field 41 of `/proc/PID/task/TID/stat`: 0 normal, 3 batch), once
/// `threads` of them are running; `None` if they never all appear.
fn worker_policies(pid: u32, threads: usize) -> Option<Vec<i64>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let mut policies = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("loadgen-") {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Fields after the command name, which ends at the last ')'; the
            // first of them is field 3.
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            if let Some(p) = rest.split(' ').nth(41 - 3) {
                policies.push(p.parse().expect("a policy number"));
            }
        }
        if policies.len() == threads {
            return Some(policies);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// Closed-loop workers run as `SCHED_BATCH` (they do not preempt a server on
/// their CPU when a response wakes them); open-loop ones keep the normal
/// policy, where waking late would send late. Read from outside, off the
/// running process's threads.
#[test]
fn closed_loop_workers_yield_on_wake_up_and_open_loop_ones_do_not() {
    let server = HttpServer::ok();
    let url = server.url("/");
    for (args, want) in [
        (vec!["-z", "1500ms", "-c", "4", "--threads", "2"], 3),
        (
            vec!["-z", "1500ms", "-c", "4", "--threads", "2", "--rate", "200"],
            0,
        ),
    ] {
        let ctx = TestContext::new();
        let child = ctx
            .cmd(["bench", &url, "--json"])
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run ocibench");
        let policies = worker_policies(child.id(), 2);
        let out = child.wait_with_output().expect("ocibench ends");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(policies, Some(vec![want; 2]), "{args:?}");
    }
}

/// `bytes_received` counts what came over the wire, byte for byte: a server
/// whose head is not the canonical one (its own reason phrase, spaces around
/// a header value) is counted as sent, not as hyper's parse would re-print it.
#[test]
fn bytes_received_are_the_bytes_on_the_wire() {
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 Very Okay\r\nX-Pad:    spaced out   \r\ncontent-length: 5\r\n\r\nhello";
    let server = RawServer::answering(RESPONSE);
    let url = server.url();
    let out = bench(&[&url, "-n", "25", "-c", "2", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["completed"], 25, "{v:#}");
    assert_eq!(v["bytes_received"], 25 * RESPONSE.len() as u64, "{v:#}");
    assert_eq!(server.counts.requests(), 25);
}
