//! Tests of the integration-test support itself: the registry starts, answers and stops;
//! fixtures push and are seen by skopeo exactly as the expected values say; expected
//! sizes match `gzip -dc | wc -c`; tampering breaks downloads; the request log counts.

use std::process::Command;

use crate::support;
use crate::support::fixtures::{
    self, ConfigSpec, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::support::podman::{ULIMITS, podman};
use crate::support::tools::{self, run, run_fails, run_stdout, sha256_bytes};
use crate::support::{FixtureImage, LoggedRequest, Registry, TestContext, Variant, push_fixture};

/// `gzip -dc FILE | wc -c`, run by a shell, as a human would check it.
fn gunzip_len(path: &std::path::Path) -> u64 {
    run_stdout(
        Command::new("sh")
            .args(["-c", "gzip -dc \"$1\" | wc -c", "sh"])
            .arg(path),
    )
    .trim()
    .parse()
    .unwrap()
}

/// Checks one pushed image against skopeo's view and the registry's blob files.
fn check_image_against_registry(registry: &Registry, repo: &str, image: &FixtureImage) {
    let by_digest = format!("{repo}@{}", image.manifest_digest);
    let raw = registry.skopeo_inspect(&by_digest, &["--raw"]);
    assert_eq!(
        raw, image.manifest,
        "skopeo sees the expected manifest bytes"
    );
    assert_eq!(sha256_bytes(&raw), image.manifest_digest);
    assert_eq!(raw.len() as u64, image.manifest_bytes);
    let config = registry.skopeo_inspect(&by_digest, &["--config", "--raw"]);
    assert_eq!(config, image.config, "skopeo sees the expected config");
    assert_eq!(config.len() as u64, image.config_bytes);
    assert!(!image.layers.is_empty());
    for layer in &image.layers {
        let path = registry.blob_data_path(&layer.digest);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            layer.compressed_bytes
        );
        assert_eq!(
            gunzip_len(&path),
            layer.uncompressed_bytes,
            "{}",
            layer.digest
        );
        assert!(layer.uncompressed_bytes > layer.compressed_bytes);
    }
    assert_eq!(
        image.compressed_bytes(),
        image.layers.iter().map(|l| l.compressed_bytes).sum::<u64>()
    );
}

#[test]
fn registry_starts_answers_and_stops() {
    let registry = Registry::start();
    let resp = registry.request("GET", "/v2/", &[], b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(registry.addr().starts_with("127.0.0.1:"));
    assert!(registry.storage_root().starts_with(registry.dir()));
    let addr = registry.addr().to_string();
    let dir = registry.dir().to_path_buf();
    drop(registry);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "registry still listening after drop"
    );
    assert!(!dir.exists(), "registry temp dir removed on drop");
}

#[test]
fn registry_start_retries_when_the_port_is_taken() {
    // What a race with another process looks like: the port is bound by the time the
    // registry tries it.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let registry = Registry::builder().first_port(taken).start();
    assert_ne!(registry.addr(), format!("127.0.0.1:{taken}"));
    assert_eq!(registry.request("GET", "/v2/", &[], b"").status, 200);
}

#[test]
fn two_registries_get_different_ports() {
    let a = Registry::start();
    let b = Registry::start();
    assert_ne!(a.addr(), b.addr());
}

#[test]
fn htpasswd_registry_refuses_anonymous_and_accepts_credentials() {
    let registry = Registry::builder().htpasswd("alice", "s3cret pass").start();
    let anon = registry.get_anonymous("/v2/");
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("www-authenticate"),
        Some(r#"Basic realm="ocibench-test""#)
    );
    let authed = registry.request("GET", "/v2/", &[], b"");
    assert_eq!(authed.status, 200);
    let wrong = support::http::request(
        registry.addr(),
        "GET",
        "/v2/",
        &[(
            "Authorization",
            &support::http::basic_auth("alice", "wrong"),
        )],
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);

    // Pushing and inspecting go through with the credentials, and not without.
    let image = push_fixture(&registry, "private/busybox", "1", Variant::Oci);
    check_image_against_registry(&registry, "private/busybox", &image);
    let out = run_fails(tools::skopeo().args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        &registry.docker_ref("private/busybox:1"),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authentication required") || stderr.contains("unauthorized"),
        "{stderr}"
    );
    // The login files TestContext writes are the standard format: skopeo reads them.
    let ctx = TestContext::new();
    for authfile in [ctx.docker_login(&registry), ctx.containers_login(&registry)] {
        let raw = tools::run(
            tools::skopeo()
                .args(["inspect", "--raw", "--tls-verify=false", "--authfile"])
                .arg(&authfile)
                .arg(registry.docker_ref("private/busybox:1")),
        )
        .stdout;
        assert_eq!(sha256_bytes(&raw), image.manifest_digest);
    }
}

#[test]
fn fixtures_export_to_archives() {
    let dir = tempfile::tempdir().unwrap();
    let oci_archive = dir.path().join("busybox-oci.tar");
    let docker_archive = dir.path().join("busybox-docker.tar");
    support::export_fixture(
        Variant::Oci,
        &format!("oci-archive:{}", oci_archive.display()),
    );
    support::export_fixture(
        Variant::Oci,
        &format!("docker-archive:{}:busybox:1", docker_archive.display()),
    );
    let oci = &fixtures::fixture_layout(Variant::Oci).image;
    let raw = tools::run(
        tools::skopeo()
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}", oci_archive.display())),
    )
    .stdout;
    assert_eq!(sha256_bytes(&raw), oci.manifest_digest);
    let listing = run_stdout(Command::new("tar").arg("-tf").arg(&docker_archive));
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
}

#[test]
fn oci_fixture_pushes_unchanged() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/busybox", "oci", Variant::Oci);
    assert_eq!(image.media_type, OCI_MANIFEST);
    assert_eq!(image.platform, "linux/amd64");
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.layers[0].media_type, OCI_LAYER_GZIP);
    assert_eq!(image.reference, registry.reference("fixtures/busybox:oci"));
    // The tag resolves to the layout's manifest digest.
    let raw = registry.skopeo_inspect("fixtures/busybox:oci", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), image.manifest_digest);
    assert_eq!(
        image.manifest_digest,
        fixtures::fixture_layout(Variant::Oci).image.manifest_digest
    );
    check_image_against_registry(&registry, "fixtures/busybox", &image);
    assert_eq!(registry.tags("fixtures/busybox"), ["oci"]);
    assert!(registry.tags("fixtures/none").is_empty());
    assert!(registry.has_blob(&image.layers[0].digest));
    assert!(registry.repo_has_layer("fixtures/busybox", &image.layers[0].digest));
    assert!(!registry.repo_has_layer("fixtures/other", &image.layers[0].digest));
    let config = image.config_json();
    assert_eq!(config["config"]["Cmd"][0], "httpd");
    assert_eq!(config["rootfs"]["diff_ids"][0], image.layers[0].diff_id);
    // The size object has DESIGN.md's shape.
    let size = image.size_json();
    assert_eq!(size["compressed_bytes"], image.layers[0].compressed_bytes);
    assert_eq!(size["layers"][0]["diff_id"], image.layers[0].diff_id);
}

#[test]
fn docker_v2s2_fixture_has_docker_media_types_and_a_new_digest() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/busybox", "v2s2", Variant::DockerV2s2);
    let oci = &fixtures::fixture_layout(Variant::Oci).image;
    assert_eq!(image.media_type, DOCKER_MANIFEST);
    assert_eq!(image.manifest_json()["config"]["mediaType"], DOCKER_CONFIG);
    assert_eq!(image.layers[0].media_type, DOCKER_LAYER_GZIP);
    assert_ne!(image.manifest_digest, oci.manifest_digest);
    // Layer blobs travel byte for byte; only the manifest (and media types) change.
    assert_eq!(image.layers[0].digest, oci.layers[0].digest);
    assert_eq!(image.layers[0].diff_id, oci.layers[0].diff_id);
    assert_eq!(image.uncompressed_bytes(), oci.uncompressed_bytes());
    let raw = registry.skopeo_inspect("fixtures/busybox:v2s2", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), image.manifest_digest);
    check_image_against_registry(&registry, "fixtures/busybox", &image);
}

#[test]
fn two_layer_fixture() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/app", "2", Variant::TwoLayers);
    assert_eq!(image.layers.len(), 2);
    let oci = &fixtures::fixture_layout(Variant::Oci).image;
    assert_eq!(
        image.layers[0], oci.layers[0],
        "base layer shared with Variant::Oci"
    );
    assert_ne!(image.layers[1].digest, image.layers[0].digest);
    let raw = registry.skopeo_inspect("fixtures/app:2", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), image.manifest_digest);
    check_image_against_registry(&registry, "fixtures/app", &image);
    // The app layer holds what app_rootfs wrote.
    let listing = run_stdout(
        Command::new("tar")
            .arg("-tzf")
            .arg(registry.blob_data_path(&image.layers[1].digest)),
    );
    for entry in [
        "./app/hello.txt",
        "./app/run.sh",
        "./app/data/numbers.txt",
        "./app/current",
    ] {
        assert!(listing.lines().any(|l| l == entry), "{entry} in {listing}");
    }
}

#[test]
fn multi_platform_index_fixture_with_attestation() {
    let registry = Registry::start();
    let image = push_fixture(
        &registry,
        "fixtures/multi",
        "1",
        Variant::MultiPlatformIndex,
    );
    let index = image.index.as_ref().expect("index variant");
    assert_eq!(index.media_type, OCI_INDEX);
    let raw = registry.skopeo_inspect("fixtures/multi:1", &["--raw"]);
    assert_eq!(
        sha256_bytes(&raw),
        index.digest,
        "skopeo --all kept the index digest"
    );
    assert_eq!(image.top_digest(), index.digest);
    let platforms: Vec<&str> = index.images.iter().map(|i| i.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(image.platform, "linux/amd64");
    let oci = &fixtures::fixture_layout(Variant::Oci).image;
    assert_eq!(
        image.manifest_digest, oci.manifest_digest,
        "amd64 entry is the Oci fixture"
    );
    let arm = image.platform_image("linux/arm64/v8");
    assert_ne!(arm.layers[0].digest, image.layers[0].digest);
    for img in &index.images {
        check_image_against_registry(&registry, "fixtures/multi", img);
    }
    // The attestation entry: unknown/unknown, annotated, pointing at an in-toto blob.
    let att = index.attestation.as_ref().expect("attestation entry");
    let json: serde_json::Value = serde_json::from_slice(&index.raw).unwrap();
    let entry = &json["manifests"][2];
    assert_eq!(entry["digest"], att.manifest_digest);
    assert_eq!(entry["platform"]["os"], "unknown");
    assert_eq!(entry["platform"]["architecture"], "unknown");
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.digest"],
        image.manifest_digest
    );
    let statement = std::fs::read(registry.blob_data_path(&att.blob_digest)).unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        image.manifest_digest[7..]
    );
}

#[test]
fn docker_manifest_list_fixture() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/list", "1", Variant::DockerManifestList);
    let index = image.index.as_ref().expect("list variant");
    assert_eq!(index.media_type, DOCKER_LIST);
    assert!(index.attestation.is_none());
    let raw = registry.skopeo_inspect("fixtures/list:1", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), index.digest);
    let resp = registry.manifest("fixtures/list", "1");
    assert_eq!(resp.header("content-type"), Some(DOCKER_LIST));
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(index.digest.as_str())
    );
    assert_eq!(index.images.len(), 2);
    for img in &index.images {
        assert_eq!(img.media_type, DOCKER_MANIFEST);
        assert!(img.layers.iter().all(|l| l.media_type == DOCKER_LAYER_GZIP));
        check_image_against_registry(&registry, "fixtures/list", img);
    }
    assert_eq!(index.images[1].platform, "linux/arm64/v8");
}

#[test]
fn tampered_blob_fails_skopeo_copy() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/tamper", "1", Variant::Oci);
    let digest = &image.layers[0].digest;
    let before = std::fs::metadata(registry.blob_data_path(digest))
        .unwrap()
        .len();
    fixtures::tamper_blob(&registry, digest);
    let path = registry.blob_data_path(digest);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        before,
        "same length"
    );
    assert_ne!(tools::sha256_file(&path), *digest);
    let dest = tempfile::tempdir().unwrap();
    let out = run_fails(
        tools::skopeo()
            .args(["copy", "--src-tls-verify=false"])
            .args([
                registry.docker_ref("fixtures/tamper:1"),
                format!("oci:{}:x", dest.path().display()),
            ]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.to_lowercase().contains("digest did not match"),
        "skopeo names the digest problem: {stderr}"
    );
}

#[test]
fn access_log_counts_blob_downloads() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "fixtures/count", "1", Variant::Oci);
    let layer = image.layers[0].digest.clone();
    let pull = |dest: &std::path::Path| {
        run(tools::skopeo()
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .args([
                registry.docker_ref("fixtures/count:1"),
                format!("oci:{}:x", dest.display()),
            ]));
    };
    let dest = tempfile::tempdir().unwrap();
    let mark = registry.mark();
    pull(dest.path());
    let requests = registry.requests_since(mark);
    let layer_gets = |reqs: &[LoggedRequest]| {
        reqs.iter()
            .filter(|r| r.is_blob_get() && r.path().ends_with(&layer))
            .count()
    };
    assert_eq!(layer_gets(&requests), 1, "{requests:#?}");
    assert!(requests.iter().any(LoggedRequest::is_manifest_get));
    assert!(requests.iter().all(|r| !r.is_write()));
    // skopeo downloads the layer and the config blob.
    assert_eq!(registry.blob_gets_since(mark), 2, "{requests:#?}");
    // A second copy into the same layout reuses the layer: no layer download.
    let mark = registry.mark();
    pull(dest.path());
    let requests = registry.requests_since(mark);
    assert_eq!(layer_gets(&requests), 0, "{requests:#?}");
    // Nothing happened since: the next window is empty (the support's own requests,
    // sentinels included, are not counted).
    let mark = registry.mark();
    registry.manifest("fixtures/count", "1");
    assert!(registry.requests_since(mark).is_empty());
}

#[test]
fn access_log_line_parses() {
    let line = r#"127.0.0.1 - - [24/Nov/2026:23:14:02 +0000] "GET /v2/a/b/blobs/sha256:ab HTTP/1.1" 200 2 "" "ureq/3.0""#;
    let req = LoggedRequest::parse(line).unwrap();
    assert_eq!(req.method, "GET");
    assert_eq!(req.uri, "/v2/a/b/blobs/sha256:ab");
    assert_eq!(req.status, 200);
    assert_eq!(req.user_agent, "ureq/3.0");
    assert!(req.is_blob_get());
    assert!(LoggedRequest::parse("garbage").is_none());
}

#[test]
fn layouts_are_deterministic() {
    let rootfs = tempfile::tempdir().unwrap();
    fixtures::busybox_rootfs(rootfs.path());
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let spec = ConfigSpec::default();
    let one = fixtures::oci_layout_from_rootfs(a.path(), "t", &[rootfs.path()], &spec);
    let two = fixtures::oci_layout_from_rootfs(b.path(), "t", &[rootfs.path()], &spec);
    assert_eq!(one.manifest_digest, two.manifest_digest);
    // A layout with one image reads without naming its tag (as `oci:DIR`).
    let untagged = fixtures::read_layout(a.path(), "");
    assert_eq!(untagged.manifest_digest, one.manifest_digest);
    assert_eq!(untagged.reference, format!("oci:{}", a.path().display()));
    assert_eq!(
        one.layers,
        fixtures::fixture_layout(Variant::Oci).image.layers,
        "same rootfs, same layer as the cached fixture"
    );
    // GNU tar wrote what was asked: owner 0, mtime 0, the busybox binary and symlinks.
    let listing = run_stdout(
        Command::new("tar").args(["-tvzf"]).arg(
            a.path()
                .join("blobs/sha256")
                .join(&one.layers[0].digest[7..]),
        ),
    );
    assert!(listing.contains("0/0"), "{listing}");
    assert!(listing.contains("1970-01-01 00:00"), "{listing}");
    assert!(listing.contains("./bin/sh -> busybox"), "{listing}");
    assert!(listing.contains("./www/index.html"), "{listing}");
}

#[test]
fn busybox_fixture_runs_under_podman() {
    let layout = fixtures::fixture_layout(Variant::Oci);
    let out = run(podman().args(["run", "--rm"]).args(ULIMITS).args([
        &layout.oci_ref(),
        "cat",
        "/www/index.html",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), fixtures::INDEX_HTML);
    // podman names an image run from `oci:DIR` after DIR; drop that name again.
    let name = format!("localhost{}:latest", layout.dir.display());
    let _ = Command::new("podman")
        .args(["rmi", "--ignore", &name])
        .output();
}

#[test]
fn test_context_seals_the_environment() {
    let ctx = TestContext::new();
    let cmd = ctx.cmd(["--version"]);
    let envs: std::collections::HashMap<_, _> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_owned())))
        .collect();
    assert_eq!(
        envs["OCIBENCH_CACHE"].as_deref(),
        Some(ctx.cache_dir.as_os_str())
    );
    assert_eq!(envs["HOME"].as_deref(), Some(ctx.home.as_os_str()));
    assert_eq!(envs["NO_COLOR"].as_deref(), Some("1".as_ref()));
    assert_eq!(envs["REGISTRY_AUTH_FILE"], None, "removed");
    assert!(ctx.cache_dir.starts_with(ctx.root()));
    let out = ctx.run(["--version"]).success();
    assert!(out.stdout.contains("ocibench"), "{}", out.stdout);
    ctx.run(["no-such-subcommand"]).failure(2);
}

#[test]
#[should_panic(expected = "missing tool no-such-tool-xyz: install the Debian package pkg-xyz")]
fn missing_tool_is_a_loud_failure() {
    tools::require("no-such-tool-xyz", "pkg-xyz");
}

/// Slow on a fresh machine (debootstrap from the apt mirror, ~1-2 min), instant once
/// cached: `cargo test --test it -- --ignored python_base`.
#[test]
#[ignore = "runs debootstrap against the apt mirror on first use"]
fn python_base_builds_pushes_and_runs() {
    let base = support::python_base("3.11-slim-bookworm", "bookworm", "slim");
    assert_eq!(base.image.platform, "linux/amd64");
    assert_eq!(base.image.layers.len(), 1);
    assert_eq!(base.image.config_json()["config"]["Cmd"][0], "python3");
    assert!(base.image.uncompressed_bytes() > 100_000_000);
    let registry = Registry::start();
    run(tools::skopeo()
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args([
            base.oci_ref(),
            registry.docker_ref("python:3.11-slim-bookworm"),
        ]));
    let pushed = support::read_registry(&registry, "python", "3.11-slim-bookworm");
    assert_eq!(pushed.manifest_digest, base.image.manifest_digest);
    let out = run(podman().args(["run", "--rm"]).args(ULIMITS).args([
        &base.oci_ref(),
        "python3",
        "-c",
        "import sys; print(sys.version_info[:2])",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "(3, 11)");
    let name = format!("localhost{}:latest", base.dir.display());
    let _ = Command::new("podman")
        .args(["rmi", "--ignore", &name])
        .output();
}
