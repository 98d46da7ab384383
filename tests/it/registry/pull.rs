//! `pull` and `size` against the real Distribution registry, judged by fixtures made
//! with independent tools (tar, gzip, sha256sum, skopeo).

use crate::support;
use crate::support::{
    FixtureImage, Registry, TestContext, Variant, export_fixture, fixture_layout, push_fixture,
    tamper_blob,
};

/// The size object must equal what the fixture's own bytes say, field by field.
fn assert_size_object(v: &serde_json::Value, want: &FixtureImage) {
    assert_eq!(v["digest"], want.manifest_digest, "{v:#}");
    assert_eq!(v["media_type"], want.media_type, "{v:#}");
    assert_eq!(v["platform"], want.platform, "{v:#}");
    assert_eq!(v["manifest_bytes"], want.manifest_bytes, "{v:#}");
    assert_eq!(v["config_bytes"], want.config_bytes, "{v:#}");
    assert_eq!(v["compressed_bytes"], want.compressed_bytes(), "{v:#}");
    assert_eq!(v["uncompressed_bytes"], want.uncompressed_bytes(), "{v:#}");
    let layers = v["layers"].as_array().expect("layers array");
    assert_eq!(layers.len(), want.layers.len());
    for (got, l) in layers.iter().zip(&want.layers) {
        assert_eq!(got["digest"], l.digest);
        assert_eq!(got["diff_id"], l.diff_id);
        assert_eq!(got["media_type"], l.media_type);
        assert_eq!(got["compressed_bytes"], l.compressed_bytes);
        assert_eq!(got["uncompressed_bytes"], l.uncompressed_bytes);
    }
}

#[test]
fn both_media_type_families_pull_with_exact_sizes() {
    let registry = Registry::start();
    for (repo, variant) in [
        ("oci", Variant::Oci),
        ("docker", Variant::DockerV2s2),
        ("two", Variant::TwoLayers),
    ] {
        let want = push_fixture(&registry, repo, "1", variant);
        let ctx = TestContext::new();
        let out = ctx.run(["size", "--json", &want.reference]).success();
        assert_size_object(&out.json(), &want);
        assert_eq!(out.json()["reference"], want.reference);
        // One image, no index: nothing to say about other platforms.
        assert_eq!(out.json().get("index_digest"), None);
        assert_eq!(out.json().get("platforms"), None);
    }
}

#[test]
fn second_pull_transfers_nothing_and_heads_the_manifest() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let ctx = TestContext::new();

    let mark = registry.mark();
    let first = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(first["transferred_blobs"], 1 + want.layers.len());
    assert_eq!(registry.blob_gets_since(mark), 1 + want.layers.len());

    let mark = registry.mark();
    let second = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(second["transferred_blobs"], 0);
    let requests = registry.requests_since(mark);
    assert_eq!(registry.blob_gets_since(mark), 0, "{requests:#?}");
    // The cached tag is checked with a HEAD (Docker Hub counts GETs only).
    assert_eq!(
        requests.iter().filter(|r| r.is_manifest_get()).count(),
        0,
        "{requests:#?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "HEAD" && r.path().contains("/manifests/"))
            .count(),
        1,
        "{requests:#?}"
    );
    // `size` of a cached image reads no layer data either.
    let mark = registry.mark();
    let size = ctx
        .run(["size", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(registry.blob_gets_since(mark), 0);
    assert_size_object(&size, &want);
}

#[test]
fn platform_choice_from_an_index_skips_attestations() {
    let registry = Registry::start();
    for (repo, variant) in [
        ("oci-index", Variant::MultiPlatformIndex),
        ("docker-list", Variant::DockerManifestList),
    ] {
        let want = push_fixture(&registry, repo, "1", variant);
        let index = want.index.as_ref().expect("an index fixture");
        let ctx = TestContext::new();
        for image in &index.images {
            let out = ctx
                .run([
                    "size",
                    "--json",
                    "--platform",
                    &image.platform,
                    &want.reference,
                ])
                .success();
            let mut expected = image.clone();
            expected.reference = want.reference.clone();
            assert_size_object(&out.json(), &expected);
        }
        // The host default (linux/amd64 here) is the index's first image, and the
        // size object names the index and its platforms (attestation left out).
        let out = ctx.run(["size", "--json", &want.reference]).success();
        assert_eq!(out.json()["digest"], index.images[0].manifest_digest);
        assert_eq!(out.json()["platform"], "linux/amd64");
        assert_eq!(out.json()["index_digest"], index.digest);
        assert_eq!(
            out.json()["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64/v8"])
        );
        let text = ctx.run(["size", &want.reference]).success().stdout;
        assert!(
            text.contains(
                "  platform      linux/amd64 (one of 2 in the index: linux/amd64, linux/arm64/v8)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("  index         {}\n", index.digest)),
            "{text}"
        );

        let out = ctx
            .run(["size", "--platform", "linux/s390x", &want.reference])
            .failure(1)
            .stderr_contains("no image for platform linux/s390x")
            .stderr_contains("linux/amd64")
            .stderr_contains("hint: choose one of the available platforms");
        assert!(!out.stderr.contains("unknown/unknown"), "{}", out.stderr);
    }
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let layer = &want.layers[0].digest;
    tamper_blob(&registry, layer);
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference])
        .failure(1)
        .stderr_contains("does not match its digest")
        .stderr_contains("hint:");
    let blobs = ctx.path("cache/blobs/sha256");
    let names: Vec<String> = std::fs::read_dir(&blobs)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !names.iter().any(|n| layer.ends_with(n.as_str())),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| want.manifest_digest.ends_with(n.as_str())),
        "manifest of a failed pull stored: {names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with(".tmp")), "{names:?}");
    // The cache's index names no image either.
    let index = std::fs::read_to_string(ctx.path("cache/index.json")).unwrap_or_default();
    assert!(!index.contains(&want.reference), "{index}");
}

#[test]
fn unknown_tag_repository_and_registry_are_explained() {
    let registry = Registry::start();
    push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run(["size", &registry.reference("busybox:nope")])
        .failure(1)
        .stderr_contains("error: manifest not found")
        .stderr_contains("hint:");
    ctx.run(["size", &registry.reference("nothing:1")])
        .failure(1)
        .stderr_contains("error: repository not found")
        .stderr_contains("hint:");
    let port = support::free_port();
    ctx.run(["size", &format!("127.0.0.1:{port}/x:1")])
        .failure(1)
        .stderr_contains("error: cannot reach registry")
        .stderr_contains("hint: is a registry listening");
}

#[test]
fn file_transports_report_the_same_sizes() {
    let layout = fixture_layout(Variant::TwoLayers);
    let ctx = TestContext::new();
    let out = ctx.run(["size", "--json", &layout.oci_ref()]).success();
    assert_size_object(&out.json(), &layout.image);

    let archive = ctx.path("two.tar");
    export_fixture(
        Variant::TwoLayers,
        &format!("oci-archive:{}:t", archive.display()),
    );
    let out = ctx
        .run([
            "size",
            "--json",
            &format!("oci-archive:{}:t", archive.display()),
        ])
        .success();
    assert_size_object(&out.json(), &layout.image);

    // docker-archive holds uncompressed layer tars: compressed == uncompressed, and
    // the diff_ids are the fixture's.
    let docker = ctx.path("two-docker.tar");
    export_fixture(
        Variant::TwoLayers,
        &format!("docker-archive:{}:localhost/two:1", docker.display()),
    );
    let v = ctx
        .run([
            "size",
            "--json",
            &format!("docker-archive:{}", docker.display()),
        ])
        .success()
        .json();
    assert_eq!(v["uncompressed_bytes"], layout.image.uncompressed_bytes());
    let diff_ids: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = layout
        .image
        .layers
        .iter()
        .map(|l| l.diff_id.as_str())
        .collect();
    assert_eq!(diff_ids, want);
}
