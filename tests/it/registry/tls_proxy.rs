//! Proxies as curl and Go read them: `HTTPS_PROXY` for an HTTPS registry,
//! `HTTP_PROXY` for a plain-HTTP one, `NO_PROXY` to go around, loopback never through.
//! The registries are at a non-loopback address in a network namespace of the test's
//! own; the proxy is the counting proxy of `support::connect_proxy`, listening on the
//! namespace's loopback: HTTPS goes through it as CONNECT tunnels, plain HTTP as
//! absolute-form requests (`GET http://host:port/path`), as curl and Go send them.

use crate::support::connect_proxy::{ConnectProxy, ProxyMode};
use crate::support::netns::{NS_ADDR, NetNs};
use crate::support::ns_registry::{NsRegistry, Serve};
use crate::support::openssl_ca::OpensslCa;
use crate::support::{Output, Registry, TestContext, Variant, push_fixture};

/// `ocibench ARGS` inside `ns` with `env` set and no `NO_PROXY` unless given.
fn run_in(ns: &NetNs, ctx: &TestContext, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ctx.cmd(args);
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Output::of(&mut ns.wrap(&cmd))
}

fn tls_registry(ns: &NetNs, ca: &OpensslCa) -> NsRegistry {
    NsRegistry::start(
        ns,
        Serve::Tls {
            ca,
            require_client_cert: false,
        },
    )
}

#[test]
fn https_goes_through_https_proxy_with_its_credentials_never_shown() {
    let ns = NetNs::new();
    let ca = OpensslCa::new(NS_ADDR);
    let registry = tls_registry(&ns, &ca);
    let want = registry.push_fixture(&ns, "busybox:1", None);
    let ctx = TestContext::new();
    ca.fill_cert_dir(
        &ctx.home
            .join(".config/containers/certs.d")
            .join(registry.addr()),
        false,
    );
    let proxy = ConnectProxy::start_in(
        &ns,
        ProxyMode::Auth {
            user: "alice".into(),
            pass: "pr0xy-s3cret".into(),
        },
    );
    let out = run_in(
        &ns,
        &ctx,
        &["pull", "--json", &registry.reference("busybox:1")],
        &[(
            "HTTPS_PROXY",
            &proxy.url_with_credentials("alice", "pr0xy-s3cret"),
        )],
    )
    .success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
    out.assert_hides(&["pr0xy-s3cret"]);
    let connects = proxy.requests();
    assert!(!connects.is_empty());
    assert!(
        connects
            .iter()
            .all(|r| *r == format!("CONNECT {} HTTP/1.1", registry.addr())),
        "{connects:?}"
    );
    assert_eq!(proxy.connections(), connects.len() as u64);
    assert_eq!(proxy.bad_auth(), 0);
    // Every byte of the pull went through the tunnel: at least the blobs' sizes.
    assert!(
        proxy.bytes() > want.compressed_bytes(),
        "{} bytes",
        proxy.bytes()
    );

    // A proxy that refuses: the error says so, the hint offers NO_PROXY, and the
    // credentials in the variable are still not printed.
    let refusing = ConnectProxy::start_in(&ns, ProxyMode::Refuse);
    run_in(
        &ns,
        &TestContext::new(),
        &["pull", &registry.reference("busybox:1")],
        &[(
            "https_proxy",
            &refusing.url_with_credentials("alice", "pr0xy-s3cret"),
        )],
    )
    .failure(1)
    .stderr_contains(&format!(
        "error: cannot reach registry {0} (https://{0}/v2/busybox/manifests/1): the proxy refused CONNECT: HTTP 403",
        registry.addr()
    ))
    .stderr_contains(&format!("add {} to NO_PROXY", registry.addr()))
    .assert_hides(&["pr0xy-s3cret"]);
}

#[test]
fn plain_http_goes_through_http_proxy_and_https_through_https_proxy() {
    let ns = NetNs::new();
    let registry = NsRegistry::start(&ns, Serve::PlainHttp);
    let want = registry.push_fixture(&ns, "busybox:1", None);
    let (for_https, for_http) = (
        ConnectProxy::start_in(&ns, ProxyMode::Open),
        ConnectProxy::start_in(
            &ns,
            ProxyMode::Auth {
                user: "bob".into(),
                pass: "h77p-s3cret".into(),
            },
        ),
    );
    // --tls-verify=false: one HTTPS attempt (through HTTPS_PROXY), then plain HTTP
    // for the rest of the command (through HTTP_PROXY).
    let out = run_in(
        &ns,
        &TestContext::new(),
        &[
            "pull",
            "--json",
            "--tls-verify=false",
            &registry.reference("busybox:1"),
        ],
        &[
            ("HTTPS_PROXY", &for_https.url()),
            (
                "HTTP_PROXY",
                &for_http.url_with_credentials("bob", "h77p-s3cret"),
            ),
        ],
    )
    .success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
    out.assert_hides(&["h77p-s3cret"]);
    let connect = format!("CONNECT {} HTTP/1.1", registry.addr());
    assert_eq!(for_https.requests(), std::slice::from_ref(&connect));
    // Every plain-HTTP request went to the proxy in absolute form, with its credentials:
    // the manifest, then the config and the layer.
    let via_http = for_http.requests();
    let origin = format!("http://{}/v2/busybox/", registry.addr());
    assert!(
        via_http.iter().all(|r| {
            let mut p = r.split(' ');
            p.next() == Some("GET")
                && p.next().is_some_and(|t| t.starts_with(&origin))
                && p.next() == Some("HTTP/1.1")
        }),
        "{via_http:?}"
    );
    assert_eq!(
        via_http
            .iter()
            .filter(|r| r.contains("/blobs/sha256:"))
            .count(),
        want.layers.len() + 1,
        "{via_http:?}"
    );
    assert!(
        via_http.iter().any(|r| r.contains("/manifests/1 ")),
        "{via_http:?}"
    );
    assert_eq!(for_http.bad_auth(), 0);
    assert!(for_http.bytes() > want.compressed_bytes());

    // A push sends bodies the same way (POST, then PUT with the blob, then the manifest).
    let ctx = TestContext::new();
    let layout = crate::support::fixture_layout(Variant::Oci);
    let dest = registry.reference("pushed:1");
    run_in(
        &ns,
        &ctx,
        &["push", "--tls-verify=false", &layout.oci_ref(), &dest],
        &[(
            "HTTP_PROXY",
            &for_http.url_with_credentials("bob", "h77p-s3cret"),
        )],
    )
    .success()
    .assert_hides(&["h77p-s3cret"]);
    let put = format!(
        "PUT http://{}/v2/pushed/manifests/1 HTTP/1.1",
        registry.addr()
    );
    assert!(
        for_http.requests().contains(&put),
        "{:?}",
        for_http.requests()
    );
    let out = run_in(
        &ns,
        &ctx,
        &["pull", "--json", "--tls-verify=false", &dest],
        &[],
    )
    .success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
    assert_eq!(for_http.bad_auth(), 0);
}

#[test]
fn no_proxy_and_loopback_bypass_the_proxy() {
    let ns = NetNs::new();
    let ca = OpensslCa::new(NS_ADDR);
    let registry = tls_registry(&ns, &ca);
    let want = registry.push_fixture(&ns, "busybox:1", None);
    let proxy = ConnectProxy::start_in(&ns, ProxyMode::Open);
    let certs = tempfile::tempdir().unwrap();
    ca.fill_cert_dir(certs.path(), false);
    let cert_dir = certs.path().to_str().unwrap().to_string();
    let addr_port = registry.addr().to_string();
    let port = addr_port.rsplit(':').next().unwrap();
    for no_proxy in [
        NS_ADDR.to_string(),
        "10.0.0.0/8".to_string(),
        format!("example.com, {NS_ADDR}:{port}"),
        "*".to_string(),
    ] {
        let out = run_in(
            &ns,
            &TestContext::new(),
            &[
                "pull",
                "--json",
                "--cert-dir",
                &cert_dir,
                &registry.reference("busybox:1"),
            ],
            &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", &no_proxy)],
        )
        .success();
        assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
        assert_eq!(proxy.connections(), 0, "NO_PROXY={no_proxy}");
    }
    // Another port of the same host is not matched: through the proxy.
    run_in(
        &ns,
        &TestContext::new(),
        &[
            "pull",
            "--cert-dir",
            &cert_dir,
            &registry.reference("busybox:1"),
        ],
        &[
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", &format!("{NS_ADDR}:1")),
        ],
    )
    .success();
    assert!(proxy.connections() > 0);

    // A loopback registry is never proxied, with every variable set and no NO_PROXY.
    let local = Registry::start();
    let image = push_fixture(&local, "busybox", "1", Variant::Oci);
    let here = ConnectProxy::start_here(ProxyMode::Open);
    let ctx = TestContext::new();
    let mut cmd = ctx.cmd(["pull", "--json", &image.reference]);
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "http_proxy"] {
        cmd.env(var, here.url());
    }
    let out = Output::of(&mut cmd).success();
    assert_eq!(out.json()["image"]["digest"], image.manifest_digest);
    assert_eq!(here.connections(), 0);
}
