//! The load generator's library API against real in-test servers: exact
//! request counts, honest status and error accounting, bounded runs, and
//! latency units. No fixed ports, no timing thresholds beyond generous sanity
//! bounds.

use std::time::Duration;

use crate::support::hyper_server::{HttpServer, RawServer, Reply, closed_port_url};
use ocibench::loadgen::{BenchResult, LoadConfig, LoadConfigBuilder, Progress, run};

fn load(b: LoadConfigBuilder) -> BenchResult {
    let config = b.threads(2).build().unwrap();
    let progress = Progress::new();
    let r = run(&config, &progress).unwrap();
    assert_eq!(
        progress.finished(),
        r.completed + r.failed,
        "progress counts every counted request"
    );
    r
}

#[test]
fn exact_count_at_several_concurrencies_with_and_without_keepalive() {
    for keepalive in [true, false] {
        for (n, c) in [(1, 1), (100, 1), (100, 8), (250, 33), (7, 50)] {
            let server = HttpServer::ok();
            let r = load(
                LoadConfig::builder(server.url("/"))
                    .requests(n)
                    .concurrency(c)
                    .keepalive(keepalive),
            );
            let what = format!("n={n} c={c} keepalive={keepalive}");
            assert_eq!(server.counts.requests(), n, "{what}: server saw");
            assert_eq!(
                (r.requests, r.completed, r.successful, r.failed),
                (n, n, n, 0),
                "{what}"
            );
            assert_eq!(r.status_codes.get("200"), Some(&n), "{what}");
            assert_eq!((r.concurrency, r.keepalive), (c, keepalive), "{what}");
            if keepalive {
                assert!(
                    server.counts.connections() <= c.min(n),
                    "{what}: connections are reused"
                );
            } else {
                assert_eq!(
                    server.counts.connections(),
                    n,
                    "{what}: one connection per request"
                );
            }
            assert!(r.bytes_received > 2 * n, "{what}: bytes counted");
        }
    }
}

#[test]
fn warmup_is_sent_but_not_counted() {
    let server = HttpServer::ok();
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(50)
            .warmup(20)
            .concurrency(4),
    );
    assert_eq!(server.counts.requests(), 70);
    assert_eq!((r.requests, r.completed), (50, 50));
}

#[test]
fn every_third_503_is_counted_exactly() {
    let server = HttpServer::start(|n| Reply::Status(if n % 3 == 2 { 503 } else { 200 }));
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(90)
            .concurrency(7),
    );
    assert_eq!(
        (r.completed, r.successful, r.non_2xx, r.failed),
        (90, 60, 30, 0)
    );
    assert_eq!(r.status_codes.len(), 2);
    assert_eq!(r.status_codes["200"], 60);
    assert_eq!(r.status_codes["503"], 30);
    assert!(
        (r.requests_per_second - 90.0 / r.total_seconds).abs() < 1e-6,
        "completed, not successful, per second"
    );
}

#[test]
fn server_closing_each_connection_is_not_an_error() {
    let server = HttpServer::start(|_| Reply::Close);
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(60)
            .concurrency(4),
    );
    assert_eq!(server.counts.requests(), 60);
    assert_eq!((r.completed, r.failed), (60, 0));
    assert_eq!(server.counts.connections(), 60);
}

#[test]
fn resets_are_counted_as_resets_and_the_run_continues() {
    let server = RawServer::resetting(4);
    let r = load(
        LoadConfig::builder(server.url())
            .requests(80)
            .concurrency(4),
    );
    assert_eq!(
        server.counts.requests(),
        80,
        "every request reached the server once"
    );
    assert_eq!(server.counts.resets(), 20);
    assert_eq!(r.errors.reset, 20, "{:?}", r.errors);
    assert_eq!((r.completed, r.failed, r.requests), (60, 20, 80));
    assert_eq!(r.errors.total(), 20);
}

#[test]
fn a_server_that_never_answers_times_out_at_the_timeout() {
    let server = HttpServer::start(|_| Reply::Hang);
    let timeout = Duration::from_millis(200);
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(6)
            .concurrency(3)
            .timeout(Some(timeout)),
    );
    assert_eq!((r.completed, r.failed, r.errors.timeout), (0, 6, 6));
    // Recorded at the timeout (within the histogram's 0.1% resolution), not dropped.
    let near = |ms: f64| (ms - 200.0).abs() <= 0.5;
    let l = r.latency_ms.expect("timeouts have a latency");
    assert!(near(l.p50) && near(l.min) && near(l.max), "{l:?}");
    assert!(r.total_seconds < 30.0, "bounded: {}", r.total_seconds);
    // Timed-out connections are dropped and re-opened.
    assert_eq!(server.counts.connections(), 6);
}

#[test]
fn a_timed_run_against_a_silent_server_ends_at_its_deadline() {
    let server = HttpServer::start(|_| Reply::Hang);
    let r = load(
        LoadConfig::builder(server.url("/"))
            .duration(Duration::from_millis(300))
            .concurrency(3)
            .timeout(Some(Duration::from_secs(60))),
    );
    // In flight at the deadline: neither completed nor failed, but unfinished.
    assert_eq!((r.requests, r.completed, r.failed), (0, 0, 0));
    assert_eq!(r.unfinished, 3, "one per client");
    assert_eq!(r.latency_ms, None, "no latency, not zeros");
    assert!(r.total_seconds <= 0.3 + 1e-9, "{}", r.total_seconds);
}

#[test]
fn a_timed_run_counts_what_finished() {
    let server = HttpServer::ok();
    let r = load(
        LoadConfig::builder(server.url("/"))
            .duration(Duration::from_millis(300))
            .concurrency(4),
    );
    assert!(r.completed > 0);
    assert_eq!(r.requests, r.completed + r.failed);
    assert!(server.counts.requests() >= r.completed);
    assert!(
        r.total_seconds > 0.0 && r.total_seconds <= 0.3 + 1e-9,
        "{}",
        r.total_seconds
    );
}

#[test]
fn a_timed_run_does_not_count_what_was_in_flight_at_the_end() {
    // Each answer takes at least 100 ms: in 250 ms a client finishes at most two.
    let server = HttpServer::start(|_| Reply::After(Duration::from_millis(100)));
    let r = load(
        LoadConfig::builder(server.url("/"))
            .duration(Duration::from_millis(250))
            .concurrency(2),
    );
    assert!(r.completed <= 4, "{} completed", r.completed);
    assert_eq!((r.failed, r.requests), (0, r.completed));
    assert_eq!(r.unfinished, 2, "each client had one in flight at the end");
    assert!(
        server.counts.requests() > r.completed,
        "the cut requests reached the server"
    );
}

#[test]
fn refused_connections_are_connect_errors() {
    let r = load(
        LoadConfig::builder(closed_port_url())
            .requests(10)
            .concurrency(3),
    );
    assert_eq!((r.completed, r.failed, r.errors.connect), (0, 10, 10));
    assert_eq!(
        r.latency_ms, None,
        "failed requests without a timeout have no latency"
    );
}

#[test]
fn latency_is_in_milliseconds() {
    let server = HttpServer::start(|_| Reply::After(Duration::from_millis(50)));
    let r = load(
        LoadConfig::builder(server.url("/"))
            .requests(20)
            .concurrency(5),
    );
    let l = r.latency_ms.unwrap();
    assert!((45.0..150.0).contains(&l.p50), "{l:?}");
    assert!(l.min >= 45.0 && l.max < 1000.0, "{l:?}");
    assert!(
        l.min <= l.p50 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
        "{l:?}"
    );
    // ab's means: 20 requests in 4 rounds of ~50 ms at concurrency 5.
    let (per, across) = (
        r.mean_ms_per_request.unwrap(),
        r.mean_ms_across_concurrent.unwrap(),
    );
    assert!((per - 5.0 * across).abs() < 1e-6);
}

#[test]
fn method_headers_and_body_reach_the_server() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, _handle) = capture_server(seen.clone());
    let (name, value) = ocibench::loadgen::config::parse_header("X-Test: yes").unwrap();
    let r = load(
        LoadConfig::builder(format!("http://{addr}/p?q=1"))
            .requests(3)
            .concurrency(1)
            .method(http::Method::POST)
            .header(name, value)
            .body("hello"),
    );
    assert_eq!(r.completed, 3);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (method, uri, header, host, body) in seen.iter() {
        assert_eq!(method, "POST");
        assert_eq!(uri, "/p?q=1");
        assert_eq!(header, "yes");
        assert_eq!(host, &addr.to_string());
        assert_eq!(body, b"hello");
    }
}

type Seen = (String, String, String, String, Vec<u8>);

/// A hyper server recording method, URI, X-Test, Host and body of each request.
fn capture_server(
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use http_body_util::BodyExt;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let (s, _) = l.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            async move {
                                let h = |n: &str| {
                                    req.headers()
                                        .get(n)
                                        .map(|v| v.to_str().unwrap().to_string())
                                        .unwrap_or_default()
                                };
                                let (m, u, x, host) = (
                                    req.method().to_string(),
                                    req.uri().to_string(),
                                    h("x-test"),
                                    h("host"),
                                );
                                let body =
                                    req.into_body().collect().await.unwrap().to_bytes().to_vec();
                                seen.lock().unwrap().push((m, u, x, host, body));
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    (addr, handle)
}
