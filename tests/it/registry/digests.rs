//! Digest algorithms: an image addressed by sha512 throughout (manifest, config,
//! layer; blobs under `blobs/sha512`) is read, verified, stored, copied and built
//! on; a sha512 blob that does not match its digest is refused; a digest of an
//! algorithm ocibench cannot verify is refused by name, in a reference (exit 2) and
//! in a manifest (exit 1). The fixture is an `oci:` layout written here, digests by
//! coreutils' `sha512sum`, and the same blobs pushed by raw API to the Distribution
//! registry (it takes sha512 blobs and a manifest naming them under a tag; it names
//! and serves manifests themselves by sha256 only).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::layout::to_json_bytes;
use crate::support::media::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::support::mock_image::MockImage;
use crate::support::tools::sha256_bytes;
use crate::support::tools::{self, run_with_stdin};
use crate::support::{Registry, TestContext};

/// `sha512:<hex>` of `bytes`, by `sha512sum`.
fn sha512(bytes: &[u8]) -> String {
    let out = run_with_stdin(&mut tools::command("sha512sum", "coreutils"), bytes);
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha512:{}",
        text.split_whitespace().next().expect("sha512sum output")
    )
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    dir.join("blobs").join(alg).join(hex)
}

/// Writes `bytes` under its sha512 digest in the layout at `dir`.
fn put(dir: &Path, bytes: &[u8]) -> String {
    let d = sha512(bytes);
    std::fs::create_dir_all(blob(dir, &d).parent().unwrap()).unwrap();
    std::fs::write(blob(dir, &d), bytes).unwrap();
    d
}

/// A one-layer image addressed by sha512 at `dir`, tag `v1`; `layer_digest`
/// replaces the layer's digest in the manifest when given. Returns the manifest's
/// digest, the layer's digest and the manifest.
fn sha512_layout(dir: &Path, layer_digest: Option<&str>) -> (String, String, Vec<u8>) {
    let img = MockImage::one_file("hello.txt", b"hello, sha512\n").build();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config = put(dir, &img.config);
    let layer = put(dir, &img.layer);
    let manifest = to_json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": img.config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest.unwrap_or(&layer), "size": img.layer.len()}],
    }));
    let m = put(dir, &manifest);
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), to_json_bytes(&index)).unwrap();
    (m, layer, manifest)
}

#[test]
fn a_sha512_image_is_verified_stored_copied_and_built_on() {
    let ctx = TestContext::new();
    let src = ctx.path("sha512");
    let (manifest_digest, layer_digest, manifest) = sha512_layout(&src, None);
    let location = format!("oci:{}:v1", src.display());

    let inspected = ctx.run(["inspect", "--json", &location]).success().json();
    assert_eq!(inspected["digest"], json!(manifest_digest));
    assert_eq!(inspected["layers"][0]["digest"], json!(layer_digest));
    // The layer table names the algorithm it shortens.
    ctx.run(["inspect", &location])
        .success()
        .stdout_contains(&format!("  sha512:{} ", &layer_digest[7..19]));

    // Pulled into the cache: stored under blobs/sha512, verified as sha512.
    ctx.run(["pull", &location]).success();
    let stored = blob(&ctx.cache_dir, &layer_digest);
    assert!(stored.is_file(), "{} missing", stored.display());
    assert_eq!(sha512(&std::fs::read(&stored).unwrap()), layer_digest);
    // The cache's maintenance sees them: verified, and kept by a prune (manifest,
    // config, layer).
    let verified = ctx.run(["cache", "verify", "--json"]).success().json();
    assert_eq!(
        (&verified["blobs_checked"], &verified["corrupt"]),
        (&json!(3), &json!([]))
    );
    let pruned = ctx.run(["cache", "prune", "--json"]).success().json();
    assert_eq!(
        (&pruned["kept_blobs"], &pruned["removed_blobs"]),
        (&json!(3), &json!(0))
    );

    // Copied: the digest and the manifest bytes kept.
    let out = ctx.path("copy");
    let copied = ctx
        .run([
            "copy",
            "--json",
            &location,
            &format!("oci:{}:v1", out.display()),
        ])
        .success()
        .json();
    assert_eq!(copied["digest"], json!(manifest_digest), "{copied:#}");
    assert_eq!(
        std::fs::read(blob(&out, &manifest_digest)).unwrap(),
        manifest
    );
    // And into an oci-archive, read back by digest.
    let archive = format!("oci-archive:{}:v1", ctx.path("copy.tar").display());
    ctx.run(["copy", &location, &archive]).success();
    let back = ctx.run(["inspect", "--json", &archive]).success().json();
    assert_eq!(back["digest"], json!(manifest_digest));
    // GNU tar reads the 141-byte blob names from their PAX records.
    let listed = tools::run_stdout(
        tools::command("tar", "tar")
            .arg("-tf")
            .arg(ctx.path("copy.tar")),
    );
    assert!(
        listed
            .lines()
            .any(|l| l == format!("blobs/sha512/{}", &layer_digest[7..])),
        "{listed}"
    );

    // Built on: the base's sha512 layer kept by digest under the new sha256 layer,
    // and the base recorded by its sha512 digest.
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("a.txt"), "a\n").unwrap();
    let built_dir = ctx.path("built");
    ctx.run([
        "build",
        "--from",
        &location,
        "--layer",
        &format!("{}:/app", app.display()),
        "-o",
        &format!("oci:{}:v1", built_dir.display()),
    ])
    .success();
    let index: Value =
        serde_json::from_slice(&std::fs::read(built_dir.join("index.json")).unwrap()).unwrap();
    let built_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let built: Value =
        serde_json::from_slice(&std::fs::read(blob(&built_dir, &built_digest)).unwrap()).unwrap();
    assert_eq!(built["layers"][0]["digest"], json!(layer_digest));
    assert!(
        built["layers"][1]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        built["annotations"],
        json!({"org.opencontainers.image.base.digest": manifest_digest})
    );
    assert!(blob(&built_dir, &layer_digest).is_file());
}

#[test]
fn a_sha512_blob_that_does_not_match_is_refused() {
    let ctx = TestContext::new();
    let src = ctx.path("sha512");
    let (_, layer_digest, _) = sha512_layout(&src, None);
    let path = blob(&src, &layer_digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    ctx.run(["pull", &format!("oci:{}:v1", src.display())])
        .failure(1)
        .stderr_contains(&format!("layer {layer_digest}"))
        .stderr_contains("does not match its digest or size");
    assert!(!blob(&ctx.cache_dir, &layer_digest).exists());
}

#[test]
fn unknown_digest_algorithms_are_refused_by_name() {
    let ctx = TestContext::new();
    let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
    ctx.run(["inspect", &format!("127.0.0.1:1/app@{md5}")])
        .failure(2)
        .stderr_contains(&format!(
            "digest \"{md5}\" uses algorithm \"md5\", which ocibench cannot verify (supported: sha256, sha512)"
        ));
    let src = ctx.path("md5");
    sha512_layout(&src, Some(md5));
    ctx.run(["pull", &format!("oci:{}:v1", src.display())])
        .failure(1)
        .stderr_contains("refers to content ocibench cannot verify")
        .stderr_contains(&format!(
            "digest \"{md5}\" uses algorithm \"md5\", which ocibench cannot verify (supported: sha256, sha512)"
        ))
        .stderr_contains("hint: the OCI image spec registers sha256 and sha512");
}

/// Uploads `bytes` to `repo` under their sha512 digest.
fn push_sha512_blob(reg: &Registry, repo: &str, bytes: &[u8]) {
    reg.upload_blob(repo, bytes, &sha512(bytes));
}

#[test]
fn a_sha512_image_pushed_by_raw_api_is_pulled_from_the_registry() {
    let reg = Registry::start();
    let ctx = TestContext::new();
    let src = ctx.path("sha512");
    let (_, layer_digest, manifest) = sha512_layout(&src, None);
    let doc: Value = serde_json::from_slice(&manifest).unwrap();
    for d in [&doc["config"]["digest"], &doc["layers"][0]["digest"]] {
        push_sha512_blob(
            &reg,
            "s512",
            &std::fs::read(blob(&src, d.as_str().unwrap())).unwrap(),
        );
    }
    let put = reg.request(
        "PUT",
        "/v2/s512/manifests/v1",
        &[("Content-Type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(put.status, 201, "{}", put.text());

    let image = reg.reference("s512:v1");
    ctx.run(["pull", &image]).success();
    let stored = blob(&ctx.cache_dir, &layer_digest);
    assert_eq!(sha512(&std::fs::read(&stored).unwrap()), layer_digest);
    let inspected = ctx.run(["inspect", "--json", &image]).success().json();
    // The registry names the manifest by sha256; its blobs keep their sha512 names.
    assert_eq!(inspected["digest"], json!(sha256_bytes(&manifest)));
    assert_eq!(inspected["layers"][0]["digest"], json!(layer_digest));
    let out = ctx.path("from-registry");
    ctx.run([
        "copy",
        &format!("docker://{image}"),
        &format!("oci:{}:v1", out.display()),
    ])
    .success();
    assert!(blob(&out, &layer_digest).is_file());
    // And from the layout to the registry: the manifest bytes unchanged.
    ctx.run([
        "copy",
        &format!("oci:{}:v1", src.display()),
        &reg.docker_ref("copied:v1"),
    ])
    .success();
    let mut cmd = tools::skopeo();
    cmd.args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &reg.docker_ref("copied:v1"),
    ]);
    assert_eq!(tools::run(&mut cmd).stdout, manifest);
}

/// A sha512 layout whose config names the layer's diff_id in sha512 too (the
/// decompressed tar's `sha512sum`); `wrong` names another sha512 instead.
fn sha512_diff_id_layout(dir: &Path, wrong: bool) -> (String, String) {
    let img = MockImage::one_file("hello.txt", b"hello, sha512 diff_id\n").build();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&img.layer[..]), &mut tar)
        .unwrap();
    let diff_id = if wrong {
        sha512(b"something else")
    } else {
        sha512(&tar)
    };
    let mut config: Value = serde_json::from_slice(&img.config).unwrap();
    config["rootfs"]["diff_ids"] = json!([diff_id]);
    let config = to_json_bytes(&config);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config_digest = put(dir, &config);
    let layer = put(dir, &img.layer);
    let manifest = to_json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": img.layer.len()}],
    }));
    let m = put(dir, &manifest);
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), to_json_bytes(&index)).unwrap();
    (layer, diff_id)
}

#[test]
fn a_sha512_diff_id_is_measured_in_sha512_and_checked() {
    let ctx = TestContext::new();
    let src = ctx.path("sha512-diff");
    let (layer, diff_id) = sha512_diff_id_layout(&src, false);
    let location = format!("oci:{}:v1", src.display());
    let pulled = ctx.run(["pull", "--json", &location]).success().json();
    assert_eq!(
        pulled["image"]["layers"][0]["diff_id"],
        json!(diff_id),
        "{pulled}"
    );
    // Sized again from the cache (no layer read): the same sha512 diff_id.
    let sized = ctx.run(["size", "--json", &location]).success().json();
    assert_eq!(sized["layers"][0]["diff_id"], json!(diff_id), "{sized}");
    assert_eq!(sized["layers"][0]["digest"], json!(layer));

    // A config whose sha512 diff_id is not the layer's: refused, nothing stored.
    let other = TestContext::new();
    let bad = other.path("sha512-bad");
    let (layer, wrong) = sha512_diff_id_layout(&bad, true);
    other
        .run(["pull", &format!("oci:{}:v1", bad.display())])
        .failure(1)
        .stderr_contains(&format!("but the image config says {wrong}"));
    assert!(!blob(&other.cache_dir, &layer).exists());
}

#[test]
fn a_sha512_index_copied_whole_keeps_its_sha512_name() {
    let ctx = TestContext::new();
    let src = ctx.path("sha512-index");
    let (manifest_digest, _, manifest) = sha512_layout(&src, None);
    let index = to_json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest,
            "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
    }));
    let index_digest = put(&src, &index);
    let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": OCI_INDEX, "digest": index_digest, "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "all"}}]});
    std::fs::write(src.join("index.json"), to_json_bytes(&top)).unwrap();

    let dest = ctx.path("copied");
    let out = ctx
        .run([
            "copy",
            "--all",
            "--json",
            &format!("oci:{}:all", src.display()),
            &format!("oci:{}:all", dest.display()),
        ])
        .success()
        .json();
    assert_eq!(out["digest"], json!(index_digest), "{out}");
    assert_eq!(out["digest_kept"], json!(true), "{out}");
    assert_eq!(std::fs::read(blob(&dest, &index_digest)).unwrap(), index);
    let written: Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap();
    assert_eq!(written["manifests"][0]["digest"], json!(index_digest));
}
