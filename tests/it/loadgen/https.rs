//! `bench` over HTTPS against a hyper server behind rustls whose certificate a
//! CA made in the test signed: trusted with `--cacert`, refused without it
//! (every request fails as `tls`, and the error names `--cacert`/`--insecure`),
//! accepted by `--insecure`, refused for another name. Exact counts only.

use crate::support::TestContext;
use crate::support::tls_server::{Protocols, Seen, TestCa, TlsServer};
use ocibench::loadgen::{LoadConfig, Progress, run};

fn server(ca: &TestCa, names: &[&str]) -> TlsServer {
    TlsServer::start(ca, names, Protocols::TlsH2AndHttp1, None)
}

#[test]
fn cacert_trusts_the_test_ca_and_every_request_is_answered_over_at_most_c_connections() {
    let ca = TestCa::new();
    let server = server(&ca, &["127.0.0.1", "localhost"]);
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/x"),
            "-n",
            "200",
            "-c",
            "4",
            "--threads",
            "2",
            "--cacert",
            ca.pem_path().to_str().unwrap(),
            "--json",
        ])
        .success();
    let v = out.json();
    assert_eq!(
        (&v["completed"], &v["successful"], &v["failed"]),
        (&200.into(), &200.into(), &0.into())
    );
    assert_eq!(Seen::get(&server.seen.requests), 200);
    assert_eq!(
        Seen::get(&server.seen.http11_requests),
        200,
        "ALPN http/1.1 without --http2"
    );
    let connections = Seen::get(&server.seen.connections);
    assert!((1..=4).contains(&connections), "{connections} connections");
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert_eq!(
        v["connections"], connections,
        "every connection opened was counted"
    );
    let connect = &v["connect_ms"];
    assert!(connect["min"].as_f64().unwrap() > 0.0, "{connect}");
    assert!(connect["max"].as_f64().unwrap() >= connect["min"].as_f64().unwrap());
    assert_eq!(v["errors"]["tls"], 0);
    assert_eq!(v["tls_error"], serde_json::Value::Null);
}

#[test]
fn without_cacert_every_request_fails_as_tls_and_the_error_names_cacert_and_insecure() {
    let ca = TestCa::new();
    let server = server(&ca, &["127.0.0.1"]);
    let out = TestContext::new()
        .run(["bench", &server.url("/"), "-n", "20", "-c", "2", "--json"])
        .failure(1);
    let v = out.json();
    assert_eq!((&v["completed"], &v["failed"]), (&0.into(), &20.into()));
    assert_eq!(v["errors"]["tls"], 20, "{v}");
    assert!(
        v["tls_error"].as_str().unwrap().contains("UnknownIssuer"),
        "{}",
        v["tls_error"]
    );
    assert_eq!(Seen::get(&server.seen.requests), 0);
    let stderr = &out.stderr;
    assert!(
        stderr.contains(
            "error: every TLS handshake failed (invalid peer certificate: UnknownIssuer)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("20 tls"), "{stderr}");
    assert!(stderr.contains("\nhint: "), "{stderr}");
    assert!(
        stderr.contains("--cacert FILE") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

#[test]
fn insecure_accepts_the_unknown_ca() {
    let ca = TestCa::new();
    let server = server(&ca, &["127.0.0.1"]);
    let out = TestContext::new()
        .run([
            "bench",
            &server.url("/"),
            "-n",
            "50",
            "-c",
            "3",
            "--insecure",
            "--json",
        ])
        .success();
    let v = out.json();
    assert_eq!((&v["successful"], &v["failed"]), (&50.into(), &0.into()));
    assert_eq!(Seen::get(&server.seen.requests), 50);
}

#[test]
fn a_certificate_for_another_name_is_refused_even_with_its_ca() {
    let ca = TestCa::new();
    let server = server(&ca, &["other.test"]);
    let config = LoadConfig::builder(server.url("/"))
        .requests(10)
        .concurrency(2)
        .threads(1)
        .cacert(ca.pem_path())
        .build()
        .unwrap();
    let r = run(&config, &Progress::new()).unwrap();
    assert_eq!((r.completed, r.failed, r.errors.tls), (0, 10, 10));
    let reason = r.tls_error.unwrap();
    assert!(reason.contains("not valid for"), "{reason}");
    assert_eq!(Seen::get(&server.seen.requests), 0);
    // No connection got as far as a request: connections and connect_ms count
    // only connections opened (handshakes done).
    assert_eq!((r.connections, r.connect_ms), (0, None));
}

#[test]
fn tls_usage_errors_have_hints() {
    let ctx = TestContext::new();
    let out = ctx
        .run([
            "bench",
            "https://127.0.0.1:1/",
            "--cacert",
            "/nonexistent/ca.pem",
        ])
        .failure(2);
    assert!(
        out.stderr
            .contains("error: cannot use /nonexistent/ca.pem as CA certificates"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: --cacert takes a PEM file"),
        "{}",
        out.stderr
    );
    let out = ctx
        .run(["bench", "http://127.0.0.1:1/", "--streams", "4"])
        .failure(2);
    assert!(
        out.stderr.contains("error: --streams needs --http2"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: add --http2"), "{}", out.stderr);
}
