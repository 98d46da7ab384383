//! `bench --http2 --streams N` against hyper HTTP/2 servers, over TLS (ALPN
//! `h2`) and with prior knowledge (h2c): exact request counts, `-c` connections,
//! and `C x N` requests open at once, made exact by a server that holds every
//! request until that many are open (no timing thresholds).

use crate::support::TestContext;
use crate::support::hyper_server::HttpServer;
use crate::support::tls_server::{Protocols, Seen, TestCa, TlsServer};
use ocibench::loadgen::{LoadConfig, LoadError, Progress, run};

fn assert_two_connections_of_eight_streams(server: &TlsServer, url: &str, ca: &TestCa) {
    let mut args = vec![
        "bench".to_string(),
        url.to_string(),
        "--http2".into(),
        "-c".into(),
        "2".into(),
        "--streams".into(),
        "8".into(),
        "-n".into(),
        "400".into(),
        "--threads".into(),
        "2".into(),
        "--json".into(),
    ];
    if url.starts_with("https:") {
        args.extend([
            "--cacert".into(),
            ca.pem_path().to_str().unwrap().to_string(),
        ]);
    }
    let out = TestContext::new().run(&args).success();
    let v = out.json();
    assert_eq!(
        (&v["completed"], &v["successful"], &v["failed"]),
        (&400.into(), &400.into(), &0.into()),
        "{v}"
    );
    let seen = &server.seen;
    assert_eq!(Seen::get(&seen.requests), 400);
    assert_eq!(
        Seen::get(&seen.http2_requests),
        400,
        "every request was HTTP/2"
    );
    assert_eq!(Seen::get(&seen.connections), 2);
    assert_eq!(
        Seen::get(&seen.peak_open),
        16,
        "2 connections x 8 streams in flight at once"
    );
    assert_eq!(v["http_version"], "HTTP/2");
    assert_eq!((&v["concurrency"], &v["streams"]), (&2.into(), &8.into()));
    assert_eq!(v["connections"], 2);
    assert!(v["connect_ms"]["min"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn h2_over_tls_keeps_c_connections_and_c_times_n_streams_in_flight() {
    let ca = TestCa::new();
    let server = TlsServer::start(&ca, &["127.0.0.1"], Protocols::TlsH2AndHttp1, Some(16));
    assert_two_connections_of_eight_streams(&server, &server.url("/h2"), &ca);
}

#[test]
fn h2c_prior_knowledge_keeps_c_connections_and_c_times_n_streams_in_flight() {
    let ca = TestCa::new();
    let server = TlsServer::start(&ca, &[], Protocols::H2c, Some(16));
    assert_two_connections_of_eight_streams(&server, &server.h2c_url("/h2c"), &ca);
}

#[test]
fn exact_counts_with_streams_that_do_not_divide_n() {
    let ca = TestCa::new();
    let server = TlsServer::start(&ca, &[], Protocols::H2c, None);
    let config = LoadConfig::builder(server.h2c_url("/"))
        .http2(true)
        .concurrency(3)
        .streams(5)
        .requests(101)
        .threads(2)
        .build()
        .unwrap();
    let r = run(&config, &Progress::new()).unwrap();
    assert_eq!((r.completed, r.successful, r.failed), (101, 101, 0));
    assert_eq!(Seen::get(&server.seen.requests), 101);
    assert_eq!(Seen::get(&server.seen.connections), 3);
    assert_eq!(r.connections, 3);
    assert_eq!(r.status_codes.get("200"), Some(&101));
}

#[test]
fn a_tls_server_without_h2_stops_the_run_with_a_clear_error() {
    let ca = TestCa::new();
    // Refused with an alert; ignored (no ALPN): both stop the run.
    for protocols in [Protocols::TlsHttp1Only, Protocols::TlsNoAlpn] {
        refuses_h2(&ca, protocols);
    }
}

fn refuses_h2(ca: &TestCa, protocols: Protocols) {
    let server = TlsServer::start(ca, &["127.0.0.1"], protocols, None);
    let config = LoadConfig::builder(server.url("/"))
        .http2(true)
        .requests(1000)
        .concurrency(4)
        .threads(2)
        .cacert(ca.pem_path())
        .build()
        .unwrap();
    let e = run(&config, &Progress::new()).unwrap_err();
    assert!(
        matches!(&e, LoadError::NoHttp2 { chosen: None, .. }),
        "{protocols:?}: {e:?}"
    );
    assert!(e.to_string().contains("does not speak HTTP/2"), "{e}");
    assert_eq!(Seen::get(&server.seen.requests), 0);
    // As a command: exit 1 with the hint to drop --http2.
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "--http2",
            "-z",
            "30s",
            "--cacert",
            ca.pem_path().to_str().unwrap(),
        ])
        .failure(1);
    assert!(
        out.stderr.contains("does not speak HTTP/2"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: drop --http2"), "{}", out.stderr);
}

#[test]
fn h2c_against_an_http1_server_fails_with_a_hint_to_drop_http2() {
    let server = HttpServer::ok();
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "--http2",
            "-n",
            "6",
            "-c",
            "2",
            "--json",
        ])
        .failure(1);
    let v = out.json();
    assert_eq!((&v["completed"], &v["failed"]), (&0.into(), &6.into()));
    assert!(
        out.stderr.contains("prior knowledge, h2c"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("drop --http2"), "{}", out.stderr);
}

#[test]
fn a_timed_h2_run_counts_every_request_the_server_saw() {
    let ca = TestCa::new();
    let server = TlsServer::start(&ca, &[], Protocols::H2c, None);
    let config = LoadConfig::builder(server.h2c_url("/"))
        .http2(true)
        .concurrency(2)
        .streams(4)
        .duration(std::time::Duration::from_millis(300))
        .threads(2)
        .build()
        .unwrap();
    let r = run(&config, &Progress::new()).unwrap();
    assert_eq!(r.failed, 0);
    assert!(r.completed > 0);
    assert_eq!(r.requests, r.completed);
    // Cut at the deadline: answered, or in flight (then maybe not yet sent).
    let seen = Seen::get(&server.seen.requests);
    assert!(
        (r.completed..=r.completed + r.unfinished).contains(&seen),
        "server saw {seen}, completed {}, unfinished {}",
        r.completed,
        r.unfinished
    );
    assert!(
        r.unfinished <= 8,
        "at most C x N in flight: {}",
        r.unfinished
    );
    assert_eq!(r.connections, 2);
}
