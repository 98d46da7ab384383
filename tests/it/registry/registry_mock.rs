//! The registry client against an in-process registry that misbehaves on purpose
//! (oci-client's "malicious registry" idea): Bearer-token challenges as Docker Hub
//! sends them, 503 with Retry-After, redirects to another host that must not see
//! `Authorization`, and content that does not match its digest.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::TestContext;
use crate::support::http_server::{Handler, Reply as Resp, Request as Req, Server as MockServer};
use crate::support::mock_image::{MockImage, sha};
use crate::support::tools::listing;

type BlobHook = Arc<dyn Fn(&Req, &str) -> Option<Resp> + Send + Sync>;

type Image = MockImage;

/// A one-layer image, its config naming `diff_id_override` instead of the tar's digest.
fn image(diff_id_override: Option<&str>) -> Image {
    let data = b"hello from a mock registry\n".repeat(100);
    let spec = MockImage::one_file("hello.txt", &data);
    match diff_id_override {
        Some(d) => spec.diff_id(d),
        None => spec,
    }
    .build()
}

/// Serves `img` under repository `app`, tag `v1`; `blob_hook` may replace a blob answer.
fn registry_handler(img: Arc<Image>, token_realm: Option<String>, blob_hook: BlobHook) -> Handler {
    Arc::new(move |req: &Req| {
        assert_eq!(req.method, "GET", "a pull only reads");
        if req.path.starts_with("/token") {
            return Resp::new(200, r#"{"token":"tok-123","expires_in":300}"#);
        }
        if let Some(realm) = &token_realm
            && req.headers.get("authorization").map(String::as_str) != Some("Bearer tok-123")
        {
            return Resp::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="mock",scope="repository:app:pull""#),
            );
        }
        if req.path.starts_with("/v2/app/tags/list") {
            return Resp::new(200, r#"{"name":"app","tags":["v1"]}"#);
        }
        if req.path == "/v2/app/manifests/v1" {
            return Resp::new(200, img.manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &sha(&img.manifest));
        }
        if let Some(d) = req.path.strip_prefix("/v2/app/blobs/") {
            if let Some(r) = blob_hook(req, d) {
                return r;
            }
            if d == sha(&img.config) {
                return Resp::new(200, img.config.clone());
            }
            if d == sha(&img.layer) {
                return Resp::new(200, img.layer.clone());
            }
        }
        Resp::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
    })
}

/// Runs `ocibench ARGS` in `ctx` (its own cache, no credentials of the developer's).
fn ocibench(ctx: &TestContext, args: &[&str]) -> std::process::Output {
    ctx.cmd(args).output().unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "ocibench failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The blobs in the cache at `cache` (none if nothing was ever stored).
fn stored_blobs(cache: &Path) -> Vec<String> {
    let dir = cache.join("blobs/sha256");
    if dir.exists() {
        listing(&dir)
    } else {
        Vec::new()
    }
}

#[test]
fn anonymous_bearer_token_flow_and_token_reuse() {
    let img = Arc::new(image(None));
    // The realm must be known before the server starts: use a second server for tokens.
    let tokens = MockServer::start(Arc::new(|_req: &Req| {
        Resp::new(200, r#"{"token":"tok-123","expires_in":300}"#)
    }));
    let realm = format!("http://{}/token", tokens.addr());
    let reg = MockServer::start(registry_handler(
        img.clone(),
        Some(realm),
        Arc::new(|_, _| None),
    ));
    let ctx = TestContext::new();
    let out = ocibench(&ctx, &["pull", "--json", &format!("{}/app:v1", reg.addr())]);
    let v = json(&out);
    assert_eq!(v["image"]["compressed_bytes"], img.layer.len() as u64);
    assert_eq!(v["image"]["uncompressed_bytes"], img.tar.len() as u64);
    assert_eq!(v["image"]["layers"][0]["diff_id"], sha(&img.tar));

    let token_reqs = tokens.requests();
    assert_eq!(
        token_reqs.len(),
        1,
        "one token, reused for manifest and blobs: {token_reqs:?}"
    );
    assert!(
        token_reqs[0].path.contains("service=mock"),
        "{:?}",
        token_reqs[0]
    );
    assert!(
        token_reqs[0].path.contains("scope=repository%3Aapp%3Apull"),
        "{:?}",
        token_reqs[0]
    );
    assert!(
        !token_reqs[0].headers.contains_key("authorization"),
        "anonymous token request"
    );
    let authed: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer tok-123"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        authed.len(),
        3,
        "manifest, config, layer with the token: {authed:?}"
    );
}

#[test]
fn retries_503_with_retry_after() {
    let img = Arc::new(image(None));
    let layer_digest = sha(&img.layer);
    let failures = Arc::new(Mutex::new(2));
    let hook = {
        let failures = failures.clone();
        Arc::new(move |_req: &Req, d: &str| {
            let mut f = failures.lock().unwrap();
            if d == layer_digest && *f > 0 {
                *f -= 1;
                return Some(Resp::new(503, "busy").header("Retry-After", "0"));
            }
            None
        })
    };
    let reg = MockServer::start(registry_handler(img.clone(), None, hook));
    let ctx = TestContext::new();
    let v = json(&ocibench(
        &ctx,
        &["pull", "--json", &format!("{}/app:v1", reg.addr())],
    ));
    assert_eq!(v["image"]["compressed_bytes"], img.layer.len() as u64);
    let layer_gets = reg
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&sha(&img.layer)))
        .count();
    assert_eq!(layer_gets, 3, "two 503s, then success");
}

#[test]
fn redirect_to_another_host_drops_authorization() {
    let img = Arc::new(image(None));
    let layer = img.layer.clone();
    // The "CDN": refuses any request that carries Authorization.
    let cdn = MockServer::start(Arc::new(move |req: &Req| {
        if req.headers.contains_key("authorization") {
            Resp::new(400, "Authorization leaked to another host")
        } else {
            Resp::new(200, layer.clone())
        }
    }));
    let cdn_url = format!("http://{}/blob?sig=abc", cdn.addr());
    let layer_digest = sha(&img.layer);
    let hook = Arc::new(move |_req: &Req, d: &str| {
        (d == layer_digest).then(|| Resp::new(307, "").header("Location", &cdn_url))
    });
    let tokens = MockServer::start(Arc::new(|_req: &Req| {
        Resp::new(200, r#"{"token":"tok-123"}"#)
    }));
    let reg = MockServer::start(registry_handler(
        img.clone(),
        Some(format!("http://{}/token", tokens.addr())),
        hook,
    ));
    let ctx = TestContext::new();
    let v = json(&ocibench(
        &ctx,
        &["pull", "--json", &format!("{}/app:v1", reg.addr())],
    ));
    assert_eq!(v["image"]["layers"][0]["digest"], sha(&img.layer));
    let cdn_reqs = cdn.requests();
    assert_eq!(cdn_reqs.len(), 1);
    assert_eq!(cdn_reqs[0].path, "/blob?sig=abc", "query kept");
    assert!(!cdn_reqs[0].headers.contains_key("authorization"));
}

#[test]
fn tampered_layer_is_refused_and_nothing_stored() {
    let img = Arc::new(image(None));
    let layer_digest = sha(&img.layer);
    let mut bad = img.layer.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff; // same length, different bytes
    let hook = Arc::new(move |_req: &Req, d: &str| {
        (d == layer_digest).then(|| Resp::new(200, bad.clone()))
    });
    let reg = MockServer::start(registry_handler(img.clone(), None, hook));
    let ctx = TestContext::new();
    let out = ocibench(&ctx, &["pull", &format!("{}/app:v1", reg.addr())]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: layer") && err.contains("does not match its digest"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let blobs = stored_blobs(&ctx.cache_dir);
    assert!(
        !blobs.contains(&sha(&img.layer)[7..].to_string()),
        "corrupt layer stored: {blobs:?}"
    );
    assert!(
        !blobs.contains(&sha(&img.manifest)[7..].to_string()),
        "manifest of a failed pull stored"
    );
    assert!(
        blobs.iter().all(|b| !b.starts_with(".tmp")),
        "temp file left: {blobs:?}"
    );
}

#[test]
fn diff_id_mismatch_is_refused() {
    let wrong = format!("sha256:{}", "0".repeat(64));
    let img = Arc::new(image(Some(&wrong)));
    let reg = MockServer::start(registry_handler(img.clone(), None, Arc::new(|_, _| None)));
    let ctx = TestContext::new();
    let out = ocibench(&ctx, &["size", &format!("{}/app:v1", reg.addr())]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("but the image config says"), "{err}");
    assert!(!stored_blobs(&ctx.cache_dir).contains(&sha(&img.layer)[7..].to_string()));
}

#[test]
fn missing_tag_and_repository_are_explained() {
    let img = Arc::new(image(None));
    let reg = MockServer::start(registry_handler(img, None, Arc::new(|_, _| None)));
    let ctx = TestContext::new();
    let out = ocibench(&ctx, &["size", &format!("{}/app:nope", reg.addr())]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: manifest not found"), "{err}");
    assert!(err.contains("(tags: v1)"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn bad_input_exits_2() {
    let ctx = TestContext::new();
    for args in [
        vec!["size", "Python:3"],
        vec!["size", "oci:"],
        vec!["size", "containers-storage:x"],
        vec!["size", "--platform", "linux", "busybox"],
        vec!["size", "oci:/nonexistent/dir"],
    ] {
        let out = ocibench(&ctx, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}
