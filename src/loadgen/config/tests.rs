//! Tests of `LoadConfigBuilder::build` and the parsers beside it.

use super::*;

fn build(url: &str) -> Result<LoadConfig, ConfigError> {
    LoadConfig::builder(url).build()
}

#[test]
fn url_parts() {
    let c = build("http://127.0.0.1:8080/a/b?x=1").unwrap();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8080);
    assert_eq!(c.path, "/a/b?x=1");
    assert_eq!(c.headers[HOST], "127.0.0.1:8080");
    let c = build("http://localhost").unwrap();
    assert_eq!((c.port, c.path.to_string().as_str()), (80, "/"));
    assert_eq!(c.headers[HOST], "localhost");
    let c = build("http://[::1]:9000/").unwrap();
    assert_eq!(c.host, "::1");
    assert_eq!(c.headers[HOST], "[::1]:9000");
}

#[test]
fn a_password_in_the_url_is_sent_as_basic_auth_and_never_shown() {
    let c = build("http://alice:s3cr3t@127.0.0.1:8080/x").unwrap();
    let plus = build("http://a%40b:p+q%21@h/").unwrap();
    // base64("a@b:p+q!")
    assert_eq!(
        plus.headers[http::header::AUTHORIZATION],
        "Basic YUBiOnArcSE="
    );
    assert_eq!(c.url, "http://alice:***@127.0.0.1:8080/x");
    // base64("alice:s3cr3t"), as curl sends it.
    assert_eq!(
        c.headers[http::header::AUTHORIZATION],
        "Basic YWxpY2U6czNjcjN0"
    );
    // An explicit -H Authorization wins, as with curl.
    let c = LoadConfig::builder("http://alice:s3cr3t@127.0.0.1:8080/")
        .header(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t"),
        )
        .build()
        .unwrap();
    assert_eq!(c.headers[http::header::AUTHORIZATION], "Bearer t");
    assert_eq!(
        c.headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .count(),
        1
    );
    // A URL that does not parse is not echoed with its password either.
    let e = build("http://alice:s3cr3t@127.0.0.1:99999/")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cr3t"), "{e}");
    assert!(e.contains("alice:***@"), "{e}");
}

#[test]
fn defaults() {
    let c = build("http://127.0.0.1:1/").unwrap();
    assert_eq!(c.stop, Stop::Requests(DEFAULT_REQUESTS));
    assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
    assert!(c.keepalive);
    assert_eq!(c.timeout, Some(DEFAULT_TIMEOUT));
    assert!(c.threads >= 1);
    assert_eq!(c.threads, default_threads());
}

#[test]
fn bad_urls() {
    for u in [
        "127.0.0.1:80",
        "ftp://x/",
        "http://",
        "not a url",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:99999/",
    ] {
        assert!(matches!(build(u), Err(ConfigError::BadUrl { .. })), "{u}");
    }
    let c = build("https://127.0.0.1/").unwrap();
    assert!(c.https && !c.http2);
    assert_eq!((c.port, c.streams, c.tls_trust), (443, 1, TlsTrust::System));
}

#[test]
fn bad_counts() {
    let b = || LoadConfig::builder("http://127.0.0.1:1/");
    assert!(matches!(
        b().concurrency(0).build(),
        Err(ConfigError::ZeroConcurrency)
    ));
    assert!(matches!(
        b().requests(0).build(),
        Err(ConfigError::ZeroRequests)
    ));
    assert!(matches!(
        b().requests(5).duration(Duration::from_secs(1)).build(),
        Err(ConfigError::RequestsAndDuration)
    ));
    assert!(matches!(
        b().duration(Duration::ZERO).build(),
        Err(ConfigError::ZeroDuration)
    ));
    assert!(matches!(
        b().threads(0).build(),
        Err(ConfigError::ZeroThreads)
    ));
    let c = b().duration(Duration::from_millis(1500)).build().unwrap();
    assert_eq!(c.stop, Stop::Duration(Duration::from_millis(1500)));
    assert_eq!(c.request_count(), None);
}

#[test]
fn cpus_pin_one_worker_each_unless_threads_say_otherwise() {
    let b = || LoadConfig::builder("http://h/");
    let c = b().cpus(vec![3, 0, 3]).build().unwrap();
    assert_eq!(c.cpus, Some(vec![0, 3]));
    assert_eq!(c.threads, 2);
    let c = b().cpus(vec![0]).threads(4).build().unwrap();
    assert_eq!((c.cpus, c.threads), (Some(vec![0]), 4));
    let c = b().cpus(Vec::new()).build().unwrap();
    assert_eq!((c.cpus, c.threads), (None, default_threads()));
    assert_eq!(b().build().unwrap().cpus, None);
}

#[test]
fn headers() {
    let (n, v) = parse_header("Accept:  application/json ").unwrap();
    assert_eq!(
        (n.as_str(), v.to_str().unwrap()),
        ("accept", "application/json")
    );
    let (n, v) = parse_header("X-Empty:").unwrap();
    assert_eq!((n.as_str(), v.as_bytes()), ("x-empty", &b""[..]));
    for bad in ["NoColon", ": value", "Bad Name: v", "X: a\nb"] {
        assert!(
            matches!(parse_header(bad), Err(ConfigError::BadHeader { .. })),
            "{bad}"
        );
    }
    // The value never appears: it may be a credential.
    for bad in ["Authorization: Bearer s3cr3t\x01x", "s3cr3t"] {
        let e = parse_header(bad).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
    assert_eq!(
        parse_header("Authorization: Bearer s3cr3t\x01x")
            .unwrap_err()
            .to_string(),
        "bad header `Authorization`: invalid value"
    );
    let (n, v) = parse_header("Host: example.test").unwrap();
    let c = LoadConfig::builder("http://127.0.0.1:1/")
        .header(n, v)
        .build()
        .unwrap();
    assert_eq!(c.headers.get_all(HOST).iter().count(), 1);
    assert_eq!(c.headers[HOST], "example.test");
}

#[test]
fn no_keepalive_sends_connection_close() {
    let c = LoadConfig::builder("http://127.0.0.1:1/")
        .keepalive(false)
        .build()
        .unwrap();
    assert_eq!(c.headers[http::header::CONNECTION], "close");
}

#[test]
fn durations() {
    assert_eq!(
        parse_duration("-z", "500ms").unwrap(),
        Duration::from_millis(500)
    );
    assert_eq!(parse_duration("-z", "3s").unwrap(), Duration::from_secs(3));
    assert_eq!(
        parse_duration("-z", "2m").unwrap(),
        Duration::from_secs(120)
    );
    assert_eq!(parse_duration("-z", "7").unwrap(), Duration::from_secs(7));
    for bad in ["", "3 parsecs", "-1s", "ms"] {
        assert!(
            matches!(
                parse_duration("-z", bad),
                Err(ConfigError::BadDuration { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn methods() {
    assert_eq!(parse_method("post").unwrap(), Method::POST);
    assert_eq!(parse_method("PURGE").unwrap().as_str(), "PURGE");
    assert!(parse_method("GE T").is_err());
}

#[test]
fn http2_streams_and_tls_options() {
    let b = || LoadConfig::builder("https://127.0.0.1:8443/");
    let c = b().http2(true).streams(8).insecure(true).build().unwrap();
    assert_eq!(
        (c.http2, c.streams, c.tls_trust),
        (true, 8, TlsTrust::Insecure)
    );
    assert!(matches!(
        b().streams(4).build(),
        Err(ConfigError::StreamsWithoutHttp2)
    ));
    assert!(matches!(
        b().http2(true).streams(0).build(),
        Err(ConfigError::ZeroStreams)
    ));
    assert!(matches!(
        b().http2(true).keepalive(false).build(),
        Err(ConfigError::NoKeepaliveWithHttp2)
    ));
    assert!(matches!(
        b().cacert("/nonexistent/ca.pem").build(),
        Err(ConfigError::CaCert { .. })
    ));
    assert!(matches!(
        b().cacert("/nonexistent/ca.pem").insecure(true).build(),
        Err(ConfigError::CaCertAndInsecure)
    ));
    assert!(matches!(
        LoadConfig::builder("http://127.0.0.1/")
            .insecure(true)
            .build(),
        Err(ConfigError::TlsOptionWithoutHttps {
            option: "--insecure"
        })
    ));
    // h2c: prior knowledge over plain TCP.
    let c = LoadConfig::builder("http://127.0.0.1/")
        .http2(true)
        .build()
        .unwrap();
    assert!(c.http2 && !c.https);
}

#[test]
fn cacert_reads_every_pem_certificate_and_refuses_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    // Two (syntactically) PEM certificates: base64 of arbitrary DER bytes.
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n\
         -----BEGIN CERTIFICATE-----\nMAMCAQI=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let c = LoadConfig::builder("https://h/")
        .cacert(&pem)
        .build()
        .unwrap();
    assert!(matches!(c.tls_trust, TlsTrust::CaCerts(ref v) if v.len() == 2));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "hello\n").unwrap();
    let e = LoadConfig::builder("https://h/")
        .cacert(&empty)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
}
