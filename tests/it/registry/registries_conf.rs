//! registries.conf against real Distribution registries on loopback: mirrors tried
//! first (and skipped when dead or empty), `pull-from-mirror`, `blocked`, prefix
//! rewriting, pushes that never reach a mirror, and the HEAD that spares a cached
//! tag its manifest GET. The registries' own access logs say who served what. The
//! configuration is the test's user file (`$XDG_CONFIG_HOME/containers/`), so the
//! machine's /etc/containers stays out of it.

use std::sync::Arc;

use crate::support::http_server::{Reply as Resp, Request as Req, Server as MockServer};
use crate::support::mock_image::{MockImage, sha};
use crate::support::{
    LoggedRequest, Registry, TestContext, Variant, fixture_layout, free_port, push_fixture,
    tamper_blob,
};

fn manifest_gets(requests: &[LoggedRequest]) -> usize {
    requests.iter().filter(|r| r.is_manifest_get()).count()
}

fn manifest_heads(requests: &[LoggedRequest]) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "HEAD" && r.path().contains("/manifests/"))
        .count()
}

/// GETs and HEADs of manifests and blobs (the support's own `/v2/` syncs excluded).
fn reads(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| r.path().contains("/manifests/") || r.path().contains("/blobs/"))
        .collect()
}

#[test]
fn a_mirror_serves_the_manifest_and_blobs_and_the_location_is_not_asked() {
    let (mirror, location) = (Registry::start(), Registry::start());
    let want = push_fixture(&location, "app", "1", Variant::TwoLayers);
    push_fixture(&mirror, "app", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nlocation = \"{}\"\n\n[[registry.mirror]]\nlocation = \"{}\"\n",
        location.addr(),
        mirror.addr()
    ));
    let (m, l) = (mirror.mark(), location.mark());
    let out = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    // Reported under the name given, with the digest the location has.
    assert_eq!(out["image"]["reference"], want.reference);
    assert_eq!(out["image"]["digest"], want.manifest_digest);
    let from_mirror = mirror.requests_since(m);
    assert_eq!(manifest_gets(&from_mirror), 1, "{from_mirror:#?}");
    assert_eq!(
        mirror.blob_gets_since(m),
        1 + want.layers.len(),
        "{from_mirror:#?}"
    );
    let from_location = location.requests_since(l);
    assert_eq!(reads(&from_location), Vec::<&LoggedRequest>::new());

    // The location may lack the image altogether: the mirror alone serves it.
    let only_mirror = Registry::start();
    let want = push_fixture(&only_mirror, "solo", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
        location.addr(),
        only_mirror.addr()
    ));
    let name = location.reference("solo:1");
    let out = ctx.run(["size", "--json", &name]).success().json();
    assert_eq!(out["reference"], name);
    assert_eq!(out["digest"], want.manifest_digest);
}

#[test]
fn dead_and_empty_mirrors_are_skipped_for_the_location() {
    let (empty, location) = (Registry::start(), Registry::start());
    let want = push_fixture(&location, "app", "1", Variant::TwoLayers);
    let dead = format!("127.0.0.1:{}", free_port());
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        r#"
[[registry]]
location = "{loc}"
[[registry.mirror]]
location = "{dead}"
[[registry.mirror]]
location = "{empty}"
"#,
        loc = location.addr(),
        empty = empty.addr(),
    ));
    let (e, l) = (empty.mark(), location.mark());
    let run = ctx.run(["-v", "pull", "--json", &want.reference]).success();
    // The dead mirror is asked once, not retried: the next endpoint is there.
    let dead_tries = run.stderr.lines().filter(|l| l.contains(&dead)).count();
    assert_eq!(dead_tries, 1, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["image"]["digest"], want.manifest_digest);
    assert_eq!(out["transferred_blobs"], 1 + want.layers.len());
    // The empty mirror was asked and said 404; it served nothing.
    let asked = empty.requests_since(e);
    let manifest_asks: Vec<_> = asked
        .iter()
        .filter(|r| r.is_manifest_get())
        .map(|r| (r.path().to_string(), r.status))
        .collect();
    assert_eq!(manifest_asks, [("/v2/app/manifests/1".to_string(), 404)]);
    assert_eq!(empty.blob_gets_since(e), 0);
    // The location served the manifest and every blob.
    let served = location.requests_since(l);
    assert_eq!(manifest_gets(&served), 1, "{served:#?}");
    assert_eq!(location.blob_gets_since(l), 1 + want.layers.len());
}

#[test]
fn pull_from_mirror_digest_only_leaves_tag_pulls_to_the_location() {
    let (mirror, location) = (Registry::start(), Registry::start());
    let want = push_fixture(&location, "app", "1", Variant::Oci);
    push_fixture(&mirror, "app", "1", Variant::Oci);
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\npull-from-mirror = \"digest-only\"\n",
        location.addr(),
        mirror.addr()
    );
    let ctx = TestContext::new();
    ctx.registries_conf(&conf);
    let (m, l) = (mirror.mark(), location.mark());
    ctx.run(["pull", "--json", &want.reference]).success();
    assert_eq!(
        reads(&mirror.requests_since(m)),
        Vec::<&LoggedRequest>::new()
    );
    assert_eq!(manifest_gets(&location.requests_since(l)), 1);

    // By digest (in a fresh cache), the mirror serves it and the location is not asked.
    let ctx = TestContext::new();
    ctx.registries_conf(&conf);
    let by_digest = format!("{}/app@{}", location.addr(), want.manifest_digest);
    let (m, l) = (mirror.mark(), location.mark());
    let out = ctx.run(["pull", "--json", &by_digest]).success().json();
    assert_eq!(out["image"]["reference"], by_digest);
    assert_eq!(manifest_gets(&mirror.requests_since(m)), 1);
    assert_eq!(
        reads(&location.requests_since(l)),
        Vec::<&LoggedRequest>::new()
    );
}

#[test]
fn a_blocked_registry_is_refused_naming_the_file_and_prefix() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "app", "1", Variant::Oci);
    let ctx = TestContext::new();
    let file = ctx.registries_conf(&format!(
        "[[registry]]\nprefix = \"{}/app\"\nlocation = \"{}/app\"\nblocked = true\n",
        registry.addr(),
        registry.addr()
    ));
    let mark = registry.mark();
    ctx.run(["pull", &want.reference])
        .failure(2)
        .stderr_contains(&format!(
            "error: {} is blocked: registry \"{}/app\" has blocked = true in {}",
            want.reference,
            registry.addr(),
            file.display()
        ))
        .stderr_contains("hint: the machine's registries.conf forbids this registry");
    assert_eq!(
        reads(&registry.requests_since(mark)),
        Vec::<&LoggedRequest>::new()
    );
    // Another repository of the same registry is not covered by that prefix.
    let other = push_fixture(&registry, "other", "1", Variant::Oci);
    ctx.run(["pull", &other.reference]).success();
}

#[test]
fn a_prefix_is_rewritten_to_its_location_and_reported_as_given() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "team/app", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nprefix = \"example.com/team\"\nlocation = \"{}/team\"\n",
        registry.addr()
    ));
    let mark = registry.mark();
    let out = ctx
        .run(["pull", "--json", "example.com/team/app:1"])
        .success()
        .json();
    assert_eq!(out["image"]["reference"], "example.com/team/app:1");
    assert_eq!(out["image"]["digest"], want.manifest_digest);
    let served = registry.requests_since(mark);
    assert!(
        served
            .iter()
            .any(|r| r.is_manifest_get() && r.path() == "/v2/team/app/manifests/1"),
        "{served:#?}"
    );
    // The cache knows it by the name given: `size` of that name reads no blob.
    let mark = registry.mark();
    let size = ctx
        .run(["size", "--json", "example.com/team/app:1"])
        .success()
        .json();
    assert_eq!(size["reference"], "example.com/team/app:1");
    assert_eq!(size["digest"], want.manifest_digest);
    assert_eq!(registry.blob_gets_since(mark), 0);
}

#[test]
fn a_push_writes_to_the_location_never_to_a_mirror() {
    let (mirror, location) = (Registry::start(), Registry::start());
    let layout = fixture_layout(Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nprefix = \"example.com/team\"\nlocation = \"{}/team\"\n[[registry.mirror]]\nlocation = \"{}/team\"\n",
        location.addr(),
        mirror.addr()
    ));
    let m = mirror.mark();
    let out = ctx
        .run([
            "push",
            "--json",
            &layout.oci_ref(),
            "example.com/team/pushed:2",
        ])
        .success()
        .json();
    assert_eq!(out["reference"], "example.com/team/pushed:2");
    assert_eq!(out["digest"], layout.image.manifest_digest);
    assert_eq!(mirror.requests_since(m), Vec::<LoggedRequest>::new());
    location.assert_holds("team/pushed:2", &layout.image.manifest_digest);
}

#[test]
fn a_cached_tag_is_checked_with_head_and_fetched_anew_when_moved() {
    let registry = Registry::start();
    let first = push_fixture(&registry, "app", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run(["pull", &first.reference]).success();

    // Unchanged: one HEAD, no manifest GET, no blob.
    let mark = registry.mark();
    let out = ctx
        .run(["pull", "--json", &first.reference])
        .success()
        .json();
    assert_eq!(out["image"]["digest"], first.manifest_digest);
    assert_eq!(out["transferred_blobs"], 0);
    let requests = registry.requests_since(mark);
    assert_eq!(manifest_heads(&requests), 1, "{requests:#?}");
    assert_eq!(manifest_gets(&requests), 0, "{requests:#?}");
    assert_eq!(registry.blob_gets_since(mark), 0, "{requests:#?}");

    // The tag moved: the HEAD's digest differs, so the manifest is fetched.
    let moved = push_fixture(&registry, "app", "1", Variant::TwoLayers);
    assert_ne!(moved.manifest_digest, first.manifest_digest);
    let mark = registry.mark();
    let out = ctx
        .run(["pull", "--json", &first.reference])
        .success()
        .json();
    assert_eq!(out["image"]["digest"], moved.manifest_digest);
    let requests = registry.requests_since(mark);
    assert_eq!(manifest_heads(&requests), 1, "{requests:#?}");
    assert_eq!(manifest_gets(&requests), 1, "{requests:#?}");

    // By digest, a cached manifest needs no request at all.
    let by_digest = format!("{}/app@{}", registry.addr(), moved.manifest_digest);
    ctx.run(["pull", &by_digest]).success();
    let mark = registry.mark();
    ctx.run(["pull", &by_digest]).success();
    assert_eq!(
        reads(&registry.requests_since(mark)),
        Vec::<&LoggedRequest>::new()
    );
}

#[test]
fn a_cached_index_tag_needs_only_the_head() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "multi", "1", Variant::MultiPlatformIndex);
    let index = want.index.as_ref().expect("an index fixture");
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference]).success();
    let mark = registry.mark();
    let out = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(out["image"]["digest"], index.images[0].manifest_digest);
    let requests = registry.requests_since(mark);
    assert_eq!(manifest_heads(&requests), 1, "{requests:#?}");
    assert_eq!(reads(&requests).len(), 1, "{requests:#?}");
    // `cache prune` keeps the index the entry came from.
    ctx.run(["cache", "prune"]).success();
    let mark = registry.mark();
    ctx.run(["pull", &want.reference]).success();
    let requests = registry.requests_since(mark);
    assert_eq!(reads(&requests).len(), 1, "{requests:#?}");
}

#[test]
fn a_broken_registries_conf_is_an_error_naming_file_and_line() {
    let ctx = TestContext::new();
    let file = ctx.registries_conf("[[registry]]\nlocation = \"a.lan\"\ninsecure = yes\n");
    ctx.run(["pull", "a.lan/app:1"])
        .failure(2)
        .stderr_contains(&format!("error: {}:3: ", file.display()))
        .stderr_contains("hint: registries.conf is TOML");
    let file = ctx.registries_conf("[registries.search]\nregistries = ['docker.io']\n");
    ctx.run(["pull", "a.lan/app:1"])
        .failure(2)
        .stderr_contains(&format!(
            "error: {} is in the version 1 format",
            file.display()
        ))
        .stderr_contains("hint: rewrite it in the version 2 format");
}

#[test]
fn a_mirror_serving_a_wrong_blob_stops_the_pull() {
    let (mirror, location) = (Registry::start(), Registry::start());
    let want = push_fixture(&location, "app", "1", Variant::Oci);
    push_fixture(&mirror, "app", "1", Variant::Oci);
    tamper_blob(&mirror, &want.layers[0].digest);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
        location.addr(),
        mirror.addr()
    ));
    let l = location.mark();
    ctx.run(["pull", &want.reference])
        .failure(1)
        .stderr_contains(&format!(
            "error: layer {} from {} does not match its digest or size",
            want.layers[0].digest, want.reference
        ));
    // Not papered over with the location's copy.
    assert_eq!(location.blob_gets_since(l), 0);
}

/// A registry whose HEAD names no digest: the cached tag is fetched with a GET, as
/// before, and still nothing else is transferred.
#[test]
fn a_head_without_a_digest_falls_back_to_the_get() {
    let img = Arc::new(MockImage::one_file("a.txt", b"head without digest\n").build());
    let served = img.clone();
    let server = MockServer::start(Arc::new(move |req: &Req| {
        let (status, body, ctype) = if req.path == "/v2/app/manifests/v1" {
            (
                200,
                served.manifest.clone(),
                "application/vnd.oci.image.manifest.v1+json",
            )
        } else if req.path == format!("/v2/app/blobs/{}", sha(&served.config)) {
            (200, served.config.clone(), "application/octet-stream")
        } else if req.path == format!("/v2/app/blobs/{}", sha(&served.layer)) {
            (200, served.layer.clone(), "application/octet-stream")
        } else {
            (
                404,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec(),
                "application/json",
            )
        };
        if req.method == "HEAD" {
            return Resp::new(status, Vec::new())
                .header("Content-Type", ctype)
                .header("Content-Length", &body.len().to_string());
        }
        Resp::new(status, body).header("Content-Type", ctype)
    }));
    let name = format!("{}/app:v1", server.addr());
    let ctx = TestContext::new();
    ctx.run(["pull", &name]).success();
    let before = server.requests().len();
    let out = ctx.run(["pull", "--json", &name]).success().json();
    assert_eq!(out["transferred_blobs"], 0);
    assert_eq!(out["image"]["digest"], sha(&img.manifest));
    let second: Vec<(String, String)> = server.requests()[before..]
        .iter()
        .filter(|r| r.path != "/v2/")
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let m = "/v2/app/manifests/v1".to_string();
    assert_eq!(
        second,
        [("HEAD".to_string(), m.clone()), ("GET".to_string(), m)]
    );
}

/// `--creds` for a rewritten name goes to the registry that really serves it (the
/// location), where the requests go.
#[test]
fn creds_for_a_rewritten_name_reach_its_location() {
    let registry = Registry::builder().htpasswd("team", "s3cret-pw").start();
    let want = push_fixture(&registry, "team/app", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nprefix = \"example.com/team\"\nlocation = \"{}/team\"\n",
        registry.addr()
    ));
    let out = ctx
        .run([
            "size",
            "--json",
            "--creds",
            "team:s3cret-pw",
            "example.com/team/app:1",
        ])
        .success();
    assert_eq!(out.json()["digest"], want.manifest_digest);
    out.assert_hides(&["s3cret-pw"]);
    // Without them, the location refuses: the credentials were what made it work.
    let ctx = TestContext::new();
    ctx.registries_conf(&format!(
        "[[registry]]\nprefix = \"example.com/team\"\nlocation = \"{}/team\"\n",
        registry.addr()
    ));
    ctx.run(["size", "example.com/team/app:1"])
        .failure(1)
        .stderr_contains(&format!(
            "registry {} refused access to team/app",
            registry.addr()
        ));
}
