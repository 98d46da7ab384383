//! `copy` between registries, OCI layouts and archives, judged by skopeo and the
//! registries' access logs: the digest is kept wherever the destination can hold the
//! manifest (and equals what `skopeo inspect` reads there), `--all` keeps an index's
//! digest as `skopeo copy --all` does, a second copy uploads nothing, a copy within one
//! registry mounts, and a docker-archive destination loads in skopeo.

use serde_json::Value;

use crate::support::tools::{self, sha256_bytes};
use crate::support::{LoggedRequest, Registry, TestContext, Variant, push_fixture};

/// `skopeo inspect --raw LOCATION` (TLS off): the manifest bytes a reader gets there.
fn skopeo_raw(location: &str) -> Vec<u8> {
    let mut cmd = tools::skopeo();
    cmd.args(["inspect", "--tls-verify=false", "--raw", location]);
    tools::run(&mut cmd).stdout
}

/// `skopeo copy --all FROM TO` (TLS off both ways): the reference copy, and a reader
/// that verifies every blob and manifest it copies.
fn skopeo_copy_all(from: &str, to: &str) {
    let mut cmd = tools::skopeo();
    cmd.args([
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        from,
        to,
    ]);
    tools::run(&mut cmd);
}

fn copy_json(ctx: &TestContext, args: &[&str]) -> Value {
    let mut all = vec!["copy", "--json"];
    all.extend_from_slice(args);
    ctx.run(all).success().json()
}

/// Blob uploads in a log: POSTs that open an upload session (not mounts), PATCHes
/// and PUTs of blob data.
fn blob_uploads(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| {
            r.path().contains("/blobs/uploads/")
                && (matches!(r.method.as_str(), "PATCH" | "PUT")
                    || (r.method == "POST" && !r.uri.contains("mount=")))
        })
        .collect()
}

#[test]
fn copy_keeps_the_digest_between_registries_layouts_and_archives() {
    let a = Registry::start();
    let b = Registry::start();
    let image = push_fixture(&a, "src/app", "1", Variant::TwoLayers);
    let digest = image.manifest_digest.clone();
    let blobs = 1 + image.layers.len();
    let ctx = TestContext::new();
    let src = a.docker_ref("src/app:1");

    // Registry to another registry.
    let to_b = b.docker_ref("dst/app:1");
    let r = copy_json(&ctx, &[&src, &to_b]);
    assert_eq!(r["digest"], digest, "{r:#}");
    assert_eq!(r["source_digest"], digest);
    assert_eq!(r["digest_kept"], true);
    assert_eq!(r["blobs_copied"], blobs);
    assert_eq!(sha256_bytes(&skopeo_raw(&to_b)), digest);
    b.assert_holds("dst/app:1", &digest);

    // A second copy: every blob is skipped, nothing is uploaded.
    let mark = b.mark();
    let r = copy_json(&ctx, &[&src, &to_b]);
    assert_eq!(r["digest"], digest);
    assert_eq!(
        (r["blobs_skipped"].clone(), r["blobs_copied"].clone()),
        (blobs.into(), 0.into())
    );
    let since = b.requests_since(mark);
    assert_eq!(
        blob_uploads(&since),
        Vec::<&LoggedRequest>::new(),
        "{since:#?}"
    );

    // Within one registry: mounted from the source repository, nothing downloaded
    // or uploaded (a fresh cache: the source alone says where the blobs live).
    let fresh = TestContext::new();
    let mark = a.mark();
    let r = copy_json(&fresh, &[&src, &a.docker_ref("other/app:1")]);
    assert_eq!(r["digest"], digest);
    assert_eq!(r["blobs_mounted"], blobs, "{r:#}");
    let since = a.requests_since(mark);
    let mounts: Vec<&LoggedRequest> = since
        .iter()
        .filter(|r| {
            r.method == "POST" && r.uri.contains("mount=") && r.uri.contains("from=src%2Fapp")
        })
        .collect();
    assert_eq!(mounts.len(), blobs, "{since:#?}");
    assert!(mounts.iter().all(|m| m.status == 201), "{mounts:#?}");
    assert_eq!(
        blob_uploads(&since),
        Vec::<&LoggedRequest>::new(),
        "{since:#?}"
    );
    assert_eq!(
        since.iter().filter(|r| r.is_blob_get()).count(),
        0,
        "{since:#?}"
    );
    a.assert_holds("other/app:1", &digest);

    // Registry -> oci: -> oci-archive: -> registry, the digest kept at every step.
    let dir = ctx.path("lay");
    let oci = format!("oci:{}:t", dir.display());
    let r = copy_json(&ctx, &[&src, &oci]);
    assert_eq!(r["digest"], digest, "{r:#}");
    assert_eq!(sha256_bytes(&skopeo_raw(&oci)), digest);
    let archive = format!("oci-archive:{}:t", ctx.path("img.tar").display());
    let r = copy_json(&ctx, &[&oci, &archive]);
    assert_eq!(r["digest"], digest, "{r:#}");
    assert_eq!(sha256_bytes(&skopeo_raw(&archive)), digest);
    let back = b.docker_ref("from-archive/app:2");
    let r = copy_json(&ctx, &[&archive, &back]);
    assert_eq!(r["digest"], digest, "{r:#}");
    b.assert_holds("from-archive/app:2", &digest);

    // A docker-archive holds no manifest: converted, as skopeo does, and said so.
    let docker = format!(
        "docker-archive:{}:localhost/app:1",
        ctx.path("d.tar").display()
    );
    let r = copy_json(&ctx, &[&src, &docker]);
    assert_eq!(r["digest"], Value::Null, "{r:#}");
    assert_eq!(r["digest_kept"], false);
    let text = ctx.run(["copy", &src, &docker]).success().stdout;
    assert!(text.contains("docker-archive holds no manifest"), "{text}");
    let mut cmd = tools::skopeo();
    cmd.args([
        "inspect",
        &format!("docker-archive:{}", ctx.path("d.tar").display()),
    ]);
    let loaded: Value = serde_json::from_slice(&tools::run(&mut cmd).stdout).unwrap();
    let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(loaded["Layers"], serde_json::json!(diff_ids), "{loaded:#}");
    // The last line of the text is the destination's digest.
    let text = ctx.run(["copy", &src, &to_b]).success().stdout;
    assert_eq!(
        text.lines().last().unwrap().trim(),
        format!("digest      {digest} (kept)")
    );
}

#[test]
fn copy_all_keeps_the_index_digest_as_skopeo_copy_all_does() {
    let a = Registry::start();
    let b = Registry::start();
    let image = push_fixture(&a, "multi/app", "1", Variant::MultiPlatformIndex);
    let index = image.index.clone().expect("an index");
    let ctx = TestContext::new();
    let src = a.docker_ref("multi/app:1");

    let ours = b.docker_ref("ours/app:1");
    let r = copy_json(&ctx, &["--all", &src, &ours]);
    skopeo_copy_all(&src, &b.docker_ref("theirs/app:1"));
    let ours_raw = skopeo_raw(&ours);
    let theirs_raw = skopeo_raw(&b.docker_ref("theirs/app:1"));
    assert_eq!(sha256_bytes(&ours_raw), sha256_bytes(&theirs_raw));
    assert_eq!(sha256_bytes(&ours_raw), index.digest);
    assert_eq!(r["digest"], index.digest, "{r:#}");
    assert_eq!(r["digest_kept"], true);
    // Every entry (the attestation too) was copied, and reads back whole.
    let entries: Value = serde_json::from_slice(&ours_raw).unwrap();
    let entries = entries["manifests"].as_array().unwrap();
    assert_eq!(r["images"].as_array().unwrap().len(), entries.len());
    for e in entries {
        let d = e["digest"].as_str().unwrap();
        assert_eq!(
            sha256_bytes(&skopeo_raw(&b.docker_ref(&format!("ours/app@{d}")))),
            d
        );
    }
    let out = ctx.path("check");
    skopeo_copy_all(&ours, &format!("oci:{}:x", out.display()));

    // A second --all copy uploads nothing.
    let mark = b.mark();
    let r = copy_json(&ctx, &["--all", &src, &ours]);
    assert_eq!(r["blobs_copied"], 0, "{r:#}");
    let since = b.requests_since(mark);
    assert_eq!(
        blob_uploads(&since),
        Vec::<&LoggedRequest>::new(),
        "{since:#?}"
    );

    // --all into an OCI layout keeps the index too; skopeo reads it back.
    let dir = format!("oci:{}:all", ctx.path("lay").display());
    let r = copy_json(&ctx, &["--all", &src, &dir]);
    assert_eq!(r["digest"], index.digest, "{r:#}");
    assert_eq!(sha256_bytes(&skopeo_raw(&dir)), index.digest);
    skopeo_copy_all(&dir, &format!("oci:{}:y", out.display()));

    // Without --all: the host's image alone, its own digest kept.
    let single = b.docker_ref("single/app:1");
    let r = copy_json(&ctx, &[&src, &single]);
    assert_eq!(r["digest"], image.manifest_digest, "{r:#}");
    assert_eq!(sha256_bytes(&skopeo_raw(&single)), image.manifest_digest);
    let arm = image.platform_image("linux/arm64/v8");
    let r = copy_json(&ctx, &["--platform", "linux/arm64/v8", &src, &single]);
    assert_eq!(r["digest"], arm.manifest_digest, "{r:#}");

    // A docker-archive holds one image: --all to one is refused, with a hint.
    ctx.run([
        "copy",
        "--all",
        &src,
        &format!("docker-archive:{}", ctx.path("x.tar").display()),
    ])
    .failure(2)
    .stderr_contains("hint:");
}

#[test]
fn copy_and_inspect_refuse_bad_input_with_a_hint() {
    let ctx = TestContext::new();
    let layout = crate::support::fixture_layout(Variant::Oci);
    let missing = format!("oci:{}:x", ctx.path("nowhere").display());
    let good = layout.oci_ref();
    for args in [
        vec!["copy", &missing, "oci:out"],
        vec!["copy", &good, "dir:/tmp/x"],
        vec!["copy", &good, "oci-archive:"],
        vec!["inspect", "containers-storage:busybox"],
        vec!["inspect", &missing],
    ] {
        let out = ctx.run(&args).failure(2);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("\nhint: "), "{args:?}: {}", out.stderr);
    }
    // Nothing was written for the refused destinations.
    assert!(!ctx.path("out").exists());
}

/// skopeo's rule: an OCI layout holds OCI manifests, so a Docker schema 2 image is
/// rewritten with OCI media types; the report says the digest changed. skopeo also
/// re-serializes the config (dropping Docker-only fields), ocibench keeps it byte for
/// byte (DESIGN.md): the two manifests differ in the config digest alone.
#[test]
fn a_docker_manifest_copied_into_a_layout_is_converted_as_skopeo_converts_it() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "docker/app", "1", Variant::DockerV2s2);
    let ctx = TestContext::new();
    let src = registry.docker_ref("docker/app:1");
    let ours = format!("oci:{}:t", ctx.path("ours").display());
    let r = copy_json(&ctx, &[&src, &ours]);
    assert_eq!(r["source_digest"], image.manifest_digest, "{r:#}");
    assert_eq!(r["digest_kept"], false);
    assert_eq!(
        r["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let converted = skopeo_raw(&ours);
    assert_eq!(r["digest"], sha256_bytes(&converted));
    let theirs = format!("oci:{}:t", ctx.path("theirs").display());
    let mut cmd = tools::skopeo();
    cmd.args(["copy", "--quiet", "--src-tls-verify=false", &src, &theirs]);
    tools::run(&mut cmd);
    let mut ours_json: Value = serde_json::from_slice(&converted).unwrap();
    let mut theirs_json: Value = serde_json::from_slice(&skopeo_raw(&theirs)).unwrap();
    assert_eq!(ours_json["config"]["digest"], image.config_digest);
    for m in [&mut ours_json, &mut theirs_json] {
        m["config"]["digest"] = Value::Null;
    }
    assert_eq!(ours_json, theirs_json);
    // Back into a registry, a Docker image keeps its digest.
    let r = copy_json(&ctx, &[&src, &registry.docker_ref("docker/again:1")]);
    assert_eq!(r["digest"], image.manifest_digest, "{r:#}");
    assert_eq!(r["digest_kept"], true);
}

#[test]
fn a_docker_manifest_list_copies_whole_to_a_registry_and_is_refused_by_a_layout() {
    let a = Registry::start();
    let image = push_fixture(&a, "list/app", "1", Variant::DockerManifestList);
    let list = image.index.clone().expect("a manifest list");
    let ctx = TestContext::new();
    let src = a.docker_ref("list/app:1");
    let r = copy_json(&ctx, &["--all", &src, &a.docker_ref("copied/app:1")]);
    assert_eq!(r["digest"], list.digest, "{r:#}");
    assert_eq!(
        sha256_bytes(&skopeo_raw(&a.docker_ref("copied/app:1"))),
        list.digest
    );
    let layout = ctx.path("lay");
    ctx.run([
        "copy",
        "--all",
        &src,
        &format!("oci:{}:t", layout.display()),
    ])
    .failure(2)
    .stderr_contains("not application/vnd.docker.distribution.manifest.list.v2+json")
    .stderr_contains("hint: ");
    assert!(!layout.exists(), "a refused copy leaves no layout");
}
