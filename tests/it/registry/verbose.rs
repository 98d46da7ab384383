//! `-v` against the real Distribution registry (Basic and token auth) and a mock
//! registry (a 503 then a retry, a redirect to a pre-signed URL): one stderr line per
//! exchange, with the exact body bytes the registry served, stdout still one JSON
//! document, and no password, `Authorization` value, token or signature anywhere.
//!
//! The milliseconds vary, so each line is compared with its `N ms` normalised; every
//! other part of it (method, URL, status, bytes, notes) is compared exactly.

use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::support::http_server::{Reply, Request, Server};
use crate::support::mock_image::{MockImage, sha};
use crate::support::token::{Policy, SERVICE, TokenIssuer};
use crate::support::{
    FixtureImage, Output, Registry, TestContext, Variant, push_fixture, push_fixture_as,
};

/// The trace lines of a command's stderr (those starting with an HTTP method), with
/// every `<digits> ms` written `N ms`.
fn trace(out: &Output) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| {
            ["GET ", "HEAD ", "PUT ", "POST ", "PATCH "]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let mut shown: Vec<String> = Vec::with_capacity(words.len());
            for (i, w) in words.iter().enumerate() {
                let before_ms = words.get(i + 1).is_some_and(|n| n.starts_with("ms"));
                if before_ms && !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) {
                    shown.push("N".into());
                } else {
                    shown.push((*w).to_string());
                }
            }
            shown.join(" ")
        })
        .collect()
}

/// A pull's trace from the manifest on: a `/v2/` ping, if the client makes one, must
/// be a 200 or a 401 and is set aside; the rest is returned in order.
fn without_ping(lines: Vec<String>, addr: &str) -> Vec<String> {
    let ping = format!("GET http://{addr}/v2/ ");
    let (pings, rest): (Vec<String>, Vec<String>) =
        lines.into_iter().partition(|l| l.starts_with(&ping));
    for p in &pings {
        assert!(
            p.starts_with(&format!("{ping}200 ")) || p.starts_with(&format!("{ping}401 ")),
            "{p}"
        );
    }
    rest
}

/// The lines a pull of `image` from `repo` writes once authenticated: the manifest,
/// then each blob (config, layers) with exactly its size, blobs in any order.
fn expected_pull(addr: &str, repo: &str, tag: &str, image: &FixtureImage) -> (String, Vec<String>) {
    let manifest = format!(
        "GET http://{addr}/v2/{repo}/manifests/{tag} 200 {} B N ms",
        image.manifest_bytes
    );
    let mut blobs: Vec<String> = std::iter::once((&image.config_digest, image.config_bytes))
        .chain(image.layers.iter().map(|l| (&l.digest, l.compressed_bytes)))
        .map(|(digest, bytes)| {
            format!("GET http://{addr}/v2/{repo}/blobs/{digest} 200 {bytes} B N ms")
        })
        .collect();
    blobs.sort();
    (manifest, blobs)
}

#[track_caller]
fn assert_pull_trace(rest: &[String], first_401: &str, manifest: &str, blobs: &[String]) {
    let expected_head = [first_401.to_string(), manifest.to_string()];
    let head_len = rest.len().min(2);
    assert_eq!(
        rest[..head_len],
        expected_head[..],
        "whole trace:\n{}",
        rest.join("\n")
    );
    let mut got_blobs: Vec<String> = rest[2..].to_vec();
    got_blobs.sort();
    assert_eq!(got_blobs, blobs, "whole trace:\n{}", rest.join("\n"));
}

#[test]
fn basic_auth_pull_traces_each_exchange_with_exact_bytes_and_no_secret() {
    const USER: &str = "tracer";
    const PASSWORD: &str = "Tr4ce-pw-not-shown";
    let registry = Registry::builder().htpasswd(USER, PASSWORD).start();
    let image = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    assert_eq!(image.layers.len(), 2);
    let ctx = TestContext::new();
    let creds = format!("{USER}:{PASSWORD}");

    let out = ctx
        .run(["-v", "--creds", &creds, "pull", "--json", &image.reference])
        .success();
    assert_eq!(
        out.json()["image"]["digest"],
        image.manifest_digest.as_str()
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&creds);
    out.assert_hides(&[PASSWORD, &b64, "Basic "]);

    let addr = registry.addr();
    let rest = without_ping(trace(&out), addr);
    let (manifest, blobs) = expected_pull(addr, "busybox", "1", &image);
    assert_pull_trace(
        &rest,
        &format!("GET http://{addr}/v2/busybox/manifests/1 401 - N ms (authenticating)"),
        &manifest,
        &blobs,
    );
    // Nothing but the trace on stderr: no progress without a terminal.
    assert_eq!(
        trace(&out).len(),
        out.stderr.lines().count(),
        "{}",
        out.stderr
    );
}

#[test]
fn token_auth_pull_traces_the_token_request_but_never_the_token() {
    const ALICE_PW: &str = "alice-Tr4ce-word";
    let issuer = TokenIssuer::start(Policy::new().user("alice", ALICE_PW).allow(
        "alice",
        "alice/",
        &["pull", "push"],
    ));
    let registry = issuer.registry();
    let creds = format!("alice:{ALICE_PW}");
    let image = push_fixture_as(&registry, "alice/app:1", &creds);
    let ctx = TestContext::new();

    // `-q` hides progress and status lines, not the trace (as curl's `-s -v`).
    let out = ctx
        .run([
            "-q",
            "-v",
            "--creds",
            &creds,
            "pull",
            "--json",
            &image.reference,
        ])
        .success();
    assert_eq!(
        out.json()["image"]["digest"],
        image.manifest_digest.as_str()
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&creds);
    // Every token the issuer signs is a JWT: base64 of `{"...`, so it starts `eyJ`.
    out.assert_hides(&[ALICE_PW, &b64, "eyJ", "Bearer "]);

    let addr = registry.addr();
    let mut rest = without_ping(trace(&out), addr);
    assert!(rest.len() > 2, "{}", rest.join("\n"));
    let token_line = rest.remove(1);
    let token_start = format!(
        "GET {}?service={SERVICE}&scope=repository%3Aalice%2Fapp%3Apull 200 ",
        issuer.realm()
    );
    assert!(
        token_line.starts_with(&token_start) && token_line.ends_with(" B N ms (token)"),
        "{token_line}"
    );
    let token_bytes: u64 = token_line[token_start.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        token_bytes > 100,
        "a token answer holds a JWT: {token_line}"
    );
    let (manifest, blobs) = expected_pull(addr, "alice/app", "1", &image);
    assert_pull_trace(
        &rest,
        &format!("GET http://{addr}/v2/alice/app/manifests/1 401 - N ms (authenticating)"),
        &manifest,
        &blobs,
    );
}

#[test]
fn a_retry_is_numbered_and_a_presigned_redirect_is_redacted() {
    let img = Arc::new(MockImage::one_file("hello.txt", &b"traced\n".repeat(500)).build());
    let (layer, config) = (sha(&img.layer), sha(&img.config));
    let cdn = {
        let body = img.layer.clone();
        Server::start(Arc::new(move |_req: &Request| {
            Reply::new(200, body.clone())
        }))
    };
    let presigned = format!(
        "http://{}/layer?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261127&X-Amz-Signature=5ec2e7f00d&X-Amz-Expires=600",
        cdn.addr()
    );
    let layer_asks = Arc::new(Mutex::new(0u32));
    let registry = {
        let (img, layer, config, presigned) = (
            img.clone(),
            layer.clone(),
            config.clone(),
            presigned.clone(),
        );
        let layer_asks = layer_asks.clone();
        Server::start(Arc::new(move |req: &Request| {
            if req.path == "/v2/app/manifests/v1" {
                return Reply::new(200, img.manifest.clone())
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .header("Docker-Content-Digest", &sha(&img.manifest));
            }
            if req.path == format!("/v2/app/blobs/{config}") {
                return Reply::new(200, img.config.clone());
            }
            if req.path == format!("/v2/app/blobs/{layer}") {
                let mut asks = layer_asks.lock().unwrap();
                *asks += 1;
                return if *asks == 1 {
                    Reply::new(503, "busy").header("Retry-After", "0")
                } else {
                    Reply::new(307, "").header("Location", &presigned)
                };
            }
            Reply::new(404, r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#)
        }))
    };
    let ctx = TestContext::new();
    let out = ctx
        .run([
            "--verbose",
            "pull",
            "--json",
            &format!("{}/app:v1", registry.addr()),
        ])
        .success();
    assert_eq!(
        out.json()["image"]["compressed_bytes"],
        img.layer.len() as u64
    );
    out.assert_hides(&["AKIAEXAMPLE", "5ec2e7f00d"]);

    let reg = registry.addr();
    let lines = without_ping(trace(&out), reg);
    let layer_lines = [
        format!("GET http://{reg}/v2/app/blobs/{layer} 503 - N ms (retrying in N ms)"),
        format!("GET http://{reg}/v2/app/blobs/{layer} 307 - N ms (retry 1, redirect followed)"),
        format!(
            "GET http://{}/layer?X-Amz-Algorithm=redacted&X-Amz-Credential=redacted&X-Amz-Signature=redacted&X-Amz-Expires=redacted 200 {} B N ms",
            cdn.addr(),
            img.layer.len()
        ),
    ];
    let mut expected: Vec<String> = vec![
        format!(
            "GET http://{reg}/v2/app/manifests/v1 200 {} B N ms",
            img.manifest.len()
        ),
        format!(
            "GET http://{reg}/v2/app/blobs/{config} 200 {} B N ms",
            img.config.len()
        ),
    ];
    expected.extend(layer_lines.iter().cloned());
    let mut got = lines.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "whole trace:\n{}", lines.join("\n"));
    // The layer's three exchanges happen one after another, in this order.
    let at: Vec<usize> = layer_lines
        .iter()
        .map(|l| lines.iter().position(|x| x == l).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", lines.join("\n"));

    // Without -v, not one trace line.
    let quiet = TestContext::new()
        .run(["pull", "--json", &format!("{}/app:v1", registry.addr())])
        .success();
    assert_eq!(trace(&quiet), Vec::<String>::new(), "{}", quiet.stderr);
}

#[test]
fn a_push_traces_what_each_upload_sent_and_a_second_push_only_heads() {
    let registry = Registry::start();
    let layout = crate::support::fixture_layout(Variant::TwoLayers);
    let image = &layout.image;
    let ctx = TestContext::new();
    let dest = registry.docker_ref("pushed:1");
    let addr = registry.addr();
    let blobs: Vec<(&String, u64)> = std::iter::once((&image.config_digest, image.config_bytes))
        .chain(image.layers.iter().map(|l| (&l.digest, l.compressed_bytes)))
        .collect();
    let manifest_put = format!(
        "PUT http://{addr}/v2/pushed/manifests/1 201 0 B N ms (sent {} B)",
        image.manifest_bytes
    );

    let out = ctx.run(["-v", "push", &layout.oci_ref(), &dest]).success();
    let lines = without_ping(trace(&out), addr);
    let mut expected_fixed: Vec<String> = blobs
        .iter()
        .map(|(d, _)| format!("HEAD http://{addr}/v2/pushed/blobs/{d} 404 0 B N ms"))
        .chain(
            blobs
                .iter()
                .map(|_| format!("POST http://{addr}/v2/pushed/blobs/uploads/ 202 0 B N ms")),
        )
        .chain([manifest_put.clone()])
        .collect();
    expected_fixed.sort();
    // Each blob's PUT goes to its upload session (a random id; `_state` redacted).
    let (mut fixed, puts): (Vec<String>, Vec<String>) = lines
        .iter()
        .cloned()
        .partition(|l| !l.starts_with(&format!("PUT http://{addr}/v2/pushed/blobs/uploads/")));
    fixed.sort();
    assert_eq!(fixed, expected_fixed, "whole trace:\n{}", lines.join("\n"));
    assert_eq!(
        puts.len(),
        blobs.len(),
        "whole trace:\n{}",
        lines.join("\n")
    );
    for (digest, size) in &blobs {
        let tail = format!(
            "&digest={} 201 0 B N ms (sent {size} B)",
            digest.replace(':', "%3A")
        );
        assert!(
            puts.iter()
                .any(|p| p.ends_with(&tail) && p.contains("?_state=redacted&")),
            "no upload of {digest} sent {size} B:\n{}",
            puts.join("\n")
        );
    }
    // The manifest PUT comes after every blob is in.
    assert_eq!(lines.last(), Some(&manifest_put), "{}", lines.join("\n"));

    let again = ctx.run(["-v", "push", &layout.oci_ref(), &dest]).success();
    let mut lines = without_ping(trace(&again), addr);
    lines.sort();
    let mut expected: Vec<String> = blobs
        .iter()
        .map(|(d, _)| format!("HEAD http://{addr}/v2/pushed/blobs/{d} 200 0 B N ms"))
        .chain([manifest_put])
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
}

/// A layer body cut short (the chaos proxy closes the connection mid-body) reads
/// `X of M B` with the cause; the pull then fetches the layer again, whole, and that
/// request is `retry 1`.
#[test]
fn a_body_cut_short_says_how_much_arrived_and_why() {
    use crate::support::chaos_proxy::{ChaosConfig, ChaosProxy, Fault};
    let registry = Registry::start();
    let image = push_fixture(&registry, "base/busybox", "1", Variant::Oci);
    let layer = &image.layers[0];
    let only = format!("GET /v2/base/busybox/blobs/{}", layer.digest);
    let proxy = ChaosProxy::start(
        registry.addr(),
        ChaosConfig::scripted(Fault::Truncate, &only, 1),
    );
    let out = TestContext::new()
        .run([
            "-v",
            "pull",
            "--json",
            &format!("{}/base/busybox:1", proxy.addr()),
        ])
        .success();
    assert_eq!(proxy.injected().get(&Fault::Truncate), Some(&1));
    assert_eq!(
        out.json()["image"]["digest"],
        image.manifest_digest.as_str()
    );

    let lines = trace(&out);
    let get = format!(
        "GET http://{}/v2/base/busybox/blobs/{} 200 ",
        proxy.addr(),
        layer.digest
    );
    let of_layer: Vec<&String> = lines.iter().filter(|l| l.starts_with(&get)).collect();
    assert_eq!(of_layer.len(), 2, "{}", lines.join("\n"));
    let (cut, whole) = (of_layer[0], of_layer[1]);
    // The pull asks for the layer again, whole: a retry, numbered as one.
    assert_eq!(
        *whole,
        format!("{get}{} B N ms (retry 1)", layer.compressed_bytes)
    );
    let size = format!(" of {} B N ms (body cut: ", layer.compressed_bytes);
    let at = cut.find(&size).unwrap_or_else(|| panic!("{cut}"));
    let arrived: u64 = cut[get.len()..at]
        .parse()
        .unwrap_or_else(|_| panic!("{cut}"));
    assert!(arrived < layer.compressed_bytes, "{cut}");
    assert!(cut.ends_with(')'), "{cut}");
}
