//! Registries as they are on a LAN: HTTPS with a private CA (trusted through
//! `--cert-dir`, `$XDG_CONFIG_HOME/containers/certs.d/HOST:PORT/` or `SSL_CERT_FILE`),
//! a client certificate requirement, and plain HTTP at an address that is not
//! loopback, reached only with `--tls-verify=false`. Every registry runs in a network
//! namespace of the test's own at 10.77.0.1 (see `support::netns`), the CA is made by
//! openssl, and fixtures are pushed by skopeo.

use crate::support::TestContext;
use crate::support::netns::NetNs;
use crate::support::ns_registry::{NsRegistry, Serve};
use crate::support::openssl_ca::OpensslCa;

/// `ocibench ARGS` inside `ns`, with the context's sealed environment.
fn run_in(ns: &NetNs, ctx: &TestContext, args: &[&str]) -> crate::support::Output {
    crate::support::Output::of(&mut ns.wrap(&ctx.cmd(args)))
}

#[test]
fn a_private_ca_is_trusted_from_cert_dir_certs_d_or_ssl_cert_file_and_refused_without() {
    let ns = NetNs::new();
    let ca = OpensslCa::new(crate::support::netns::NS_ADDR);
    let registry = NsRegistry::start(
        &ns,
        Serve::Tls {
            ca: &ca,
            require_client_cert: false,
        },
    );
    let want = registry.push_fixture(&ns, "busybox:1", None);
    let image = registry.reference("busybox:1");

    // No CA: refused, and the hint names this host's certs.d directory.
    let ctx = TestContext::new();
    let out = run_in(&ns, &ctx, &["pull", &image, "--json"]).failure(1);
    let certs_d = ctx
        .home
        .join(".config/containers/certs.d")
        .join(registry.addr());
    let out = out
        .stderr_contains("the certificate is signed by an unknown CA")
        .stderr_contains(&format!(
            "hint: trust the registry's CA: put its certificate (PEM) in {}/ca.crt",
            certs_d.display()
        ));
    assert!(out.stderr.contains("--cert-dir"), "{}", out.stderr);

    // --cert-dir DIR with ca.crt.
    let dir = ctx.root().join("certs");
    ca.fill_cert_dir(&dir, false);
    let out = run_in(
        &ns,
        &ctx,
        &[
            "pull",
            &image,
            "--json",
            "--cert-dir",
            dir.to_str().unwrap(),
        ],
    )
    .success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);

    // $XDG_CONFIG_HOME/containers/certs.d/HOST:PORT/ca.crt, as rootless podman reads.
    let ctx = TestContext::new();
    ca.fill_cert_dir(&certs_d_of(&ctx, registry.addr()), false);
    let out = run_in(&ns, &ctx, &["pull", &image, "--json"]).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
    // ... and a push over the same trust.
    let pushed = registry.reference("copy:2");
    run_in(&ns, &ctx, &["push", &image, &pushed]).success();
    assert!(
        registry
            .access_log()
            .lines()
            .any(|l| l.contains("\"PUT /v2/copy/manifests/2 HTTP/1.1\" 201")),
        "{}",
        registry.access_log()
    );

    // SSL_CERT_FILE replaces the system roots (rustls-native-certs reads it).
    let ctx = TestContext::new();
    let mut cmd = ctx.cmd(["pull", &image, "--json"]);
    cmd.env("SSL_CERT_FILE", ca.file("ca.crt"));
    let out = crate::support::Output::of(&mut ns.wrap(&cmd)).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);

    // SSL_CERT_DIR likewise (every PEM file in it, hashed names or not).
    let ctx = TestContext::new();
    let ssl_dir = ctx.root().join("ssl-certs");
    ca.fill_cert_dir(&ssl_dir, false);
    let mut cmd = ctx.cmd(["pull", &image, "--json"]);
    cmd.env("SSL_CERT_DIR", &ssl_dir);
    let out = crate::support::Output::of(&mut ns.wrap(&cmd)).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);

    // --tls-verify=false: no CA needed.
    let ctx = TestContext::new();
    let out = run_in(&ns, &ctx, &["pull", &image, "--json", "--tls-verify=false"]).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
}

fn certs_d_of(ctx: &TestContext, host_port: &str) -> std::path::PathBuf {
    ctx.home.join(".config/containers/certs.d").join(host_port)
}

#[test]
fn a_registry_requiring_a_client_certificate_gets_the_cert_dirs_pair() {
    let ns = NetNs::new();
    let ca = OpensslCa::new(crate::support::netns::NS_ADDR);
    let registry = NsRegistry::start(
        &ns,
        Serve::Tls {
            ca: &ca,
            require_client_cert: true,
        },
    );
    let ctx = TestContext::new();
    let with_client = ctx.root().join("with-client");
    ca.fill_cert_dir(&with_client, true);
    let want = registry.push_fixture(&ns, "busybox:1", Some(&with_client));
    let image = registry.reference("busybox:1");

    // The CA alone: the registry refuses the handshake.
    let ca_only = ctx.root().join("ca-only");
    ca.fill_cert_dir(&ca_only, false);
    run_in(
        &ns,
        &ctx,
        &["pull", &image, "--cert-dir", ca_only.to_str().unwrap()],
    )
    .failure(1)
    .stderr_contains("the registry requires a client certificate")
    .stderr_contains("NAME.cert and NAME.key");

    // client.cert + client.key beside ca.crt, in certs.d.
    ca.fill_cert_dir(&certs_d_of(&ctx, registry.addr()), true);
    let out = run_in(&ns, &ctx, &["pull", &image, "--json"]).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);

    // A .cert without its .key: a usage error naming both files.
    let half = ctx.root().join("half");
    ca.fill_cert_dir(&half, true);
    std::fs::remove_file(half.join("client.key")).unwrap();
    run_in(
        &ns,
        &ctx,
        &["pull", &image, "--cert-dir", half.to_str().unwrap()],
    )
    .failure(2)
    .stderr_contains(&format!(
        "client certificate {} has no key {}",
        half.join("client.cert").display(),
        half.join("client.key").display()
    ))
    .stderr_contains("hint: a client certificate NAME.cert needs its key NAME.key beside it");
}

#[test]
fn plain_http_off_loopback_needs_tls_verify_false_then_falls_back() {
    let ns = NetNs::new();
    let registry = NsRegistry::start(&ns, Serve::PlainHttp);
    let want = registry.push_fixture(&ns, "busybox:1", None);
    let image = registry.reference("busybox:1");
    let ctx = TestContext::new();

    run_in(&ns, &ctx, &["pull", &image]).failure(1).stderr_contains(&format!(
        "error: cannot reach registry {0} (https://{0}/v2/busybox/manifests/1): the registry does not speak TLS on this port (it answers plain HTTP)",
        registry.addr()
    )).stderr_contains(&format!(
        "hint: {} serves plain HTTP: use --tls-verify=false, or mark it `insecure = true` in registries.conf",
        registry.addr()
    ));

    let out = run_in(&ns, &ctx, &["pull", &image, "--json", "--tls-verify=false"]).success();
    assert_eq!(out.json()["image"]["digest"], want.manifest_digest);
    // A push takes the same way (upload Locations are plain HTTP too).
    run_in(
        &ns,
        &ctx,
        &[
            "push",
            "--tls-verify=false",
            &image,
            &registry.reference("copy:2"),
        ],
    )
    .success();
    // One TLS attempt, then plain HTTP for everything: the registry logged the
    // manifest and each blob over HTTP (the TLS attempt is no HTTP request).
    let log = registry.access_log();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains("ocibench/")).collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("GET /v2/busybox/manifests/1 ")),
        "{log}"
    );
    assert_eq!(
        ours.iter()
            .filter(|l| l.contains("\"GET /v2/busybox/blobs/sha256:"))
            .count(),
        want.layers.len() + 1,
        "{log}"
    );
    assert!(
        ours.iter()
            .any(|l| l.contains("\"PUT /v2/copy/manifests/2 HTTP/1.1\" 201")),
        "{log}"
    );
}

#[test]
fn insecure_hosts_make_one_registry_insecure_and_no_other() {
    use ocibench::oci::reference::ImageReference;
    use ocibench::oci::registry::RegistryClient;

    let ns = NetNs::new();
    let plain = NsRegistry::start(&ns, Serve::PlainHttp);
    let other = NsRegistry::start(&ns, Serve::PlainHttp);
    let want = plain.push_fixture(&ns, "busybox:1", None);
    other.push_fixture(&ns, "busybox:1", None);
    let (plain_ref, other_ref) = (plain.reference("busybox:1"), other.reference("busybox:1"));
    let insecure = plain.addr().to_string();
    // The client's sockets are made on the calling thread: run it inside the netns.
    let (got, refused) = ns.run_inside(move || {
        let client = RegistryClient::builder().insecure_hosts([insecure]).build();
        let image: ImageReference = plain_ref.parse().unwrap();
        let got = client
            .fetch_manifest(&image, "1")
            .map(|m| m.digest.to_string());
        let other: ImageReference = other_ref.parse().unwrap();
        let refused = client
            .fetch_manifest(&other, "1")
            .map(|m| m.digest.to_string())
            .map_err(|e| e.to_string());
        (got.map_err(|e| e.to_string()), refused)
    });
    assert_eq!(got.unwrap(), want.manifest_digest);
    let e = refused.unwrap_err();
    assert!(
        e.ends_with("the registry does not speak TLS on this port (it answers plain HTTP)"),
        "{e}"
    );
}
