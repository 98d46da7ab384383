//! zstd layers pulled from the Distribution registry: sizes and diff_ids exactly as
//! the zstd CLI gives them, a zstd:chunked-shaped layer (several frames, skippable
//! frames) decoded and its annotations kept through a copy, export to a
//! docker-archive decompressing them, and a blob that does not decode refused with
//! nothing stored. Fixtures: `support::zstd_fixture` (Python tarfile + zstd CLI).

use crate::support::tools::{command, run_stdout, sha256_bytes};
use crate::support::zstd_fixture::{CHUNKED_CHECKSUM, OCI_LAYER_ZSTD, zstd_layout};
use crate::support::{Registry, TestContext};

#[test]
fn zstd_layers_are_sized_exactly_and_kept_through_copy_and_export() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let fx = zstd_layout(&ctx.path("layout"), false);
    let reference = fx.push(&registry, "zstd:1");

    let size = ctx.run(["size", "--json", &reference]).success().json();
    assert_eq!(size["digest"], fx.manifest_digest, "{size:#}");
    let layers = size["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (got, want) in layers.iter().zip(&fx.layers) {
        assert_eq!(got["digest"], want.digest, "{got:#}");
        assert_eq!(got["media_type"], OCI_LAYER_ZSTD);
        assert_eq!(got["compressed_bytes"], want.size);
        assert_eq!(got["diff_id"], want.diff_id, "zstd -dc | sha256sum");
        assert_eq!(
            got["uncompressed_bytes"], want.uncompressed_bytes,
            "zstd -dc | wc -c"
        );
    }
    let total: u64 = fx.layers.iter().map(|l| l.uncompressed_bytes).sum();
    assert_eq!(size["uncompressed_bytes"], total);

    // Copied to a layout, the manifest is the same bytes: the zstd:chunked
    // annotations survive, as skopeo reads them back.
    let copy = ctx.path("copy");
    let dest = format!("oci:{}:kept", copy.display());
    ctx.run(["copy", "-q", &reference, &dest]).success();
    let raw = run_stdout(crate::support::tools::skopeo().args(["inspect", "--raw", &dest]));
    assert_eq!(sha256_bytes(raw.as_bytes()), fx.manifest_digest);
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        raw["layers"][1]["annotations"][CHUNKED_CHECKSUM],
        fx.layers[1].annotations.as_ref().unwrap()[CHUNKED_CHECKSUM]
    );

    // A docker-archive holds uncompressed layers: each layer.tar is the tar the
    // zstd CLI decodes (GNU tar extracts it; sha256sum hashes it).
    let archive = ctx.path("image.tar");
    let dest = format!("docker-archive:{}:zstd:1", archive.display());
    ctx.run(["copy", "-q", &reference, &dest]).success();
    for l in &fx.layers {
        let member = format!("{}/layer.tar", &l.diff_id["sha256:".len()..]);
        let tar = command("tar", "tar")
            .arg("-xOf")
            .arg(&archive)
            .arg(&member)
            .output()
            .unwrap();
        assert!(tar.status.success(), "{member} missing from the archive");
        assert_eq!(tar.stdout.len() as u64, l.uncompressed_bytes, "{member}");
        assert_eq!(sha256_bytes(&tar.stdout), l.diff_id, "{member}");
    }
}

#[test]
fn a_zstd_blob_that_does_not_decode_is_refused_and_not_stored() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let fx = zstd_layout(&ctx.path("layout"), true);
    let reference = fx.push(&registry, "zstd:bad");
    let bad = &fx.layers[1];

    let out = ctx.run(["pull", &reference]).failure(1);
    assert!(
        out.stderr.contains(&format!(
            "error: layer {} is not valid zstd data",
            bad.digest
        )),
        "{}",
        out.stderr
    );
    // libzstd's own words: a damaged block, or the frame's checksum.
    assert!(
        out.stderr.contains(": zstd: Data corruption detected")
            || out
                .stderr
                .contains(": zstd: Restored data doesn't match checksum"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    // The good layer may stay (it was verified); the bad one must not, and no
    // temporary is left beside the blobs (the store writes its temps there).
    let blobs = ctx.cache_dir.join("blobs/sha256");
    let names = crate::support::tools::listing(&blobs);
    let hex = &bad.digest["sha256:".len()..];
    assert!(!names.iter().any(|n| n == hex), "stored: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())),
        "a temporary was left: {names:?}"
    );
}
