//! `build --platform A,B` from a multi-platform base: one image per platform with the
//! same application layer blobs, and an index of them that skopeo reads back from a
//! registry, an `oci:` layout and an `oci-archive:` alike; reproducible; refused
//! (exit 2, with a hint) for a docker-archive, a base that lacks a platform, and a
//! base that is no index. podman runs the host's image: `podman::multiplatform_podman`.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::tools::{run, sha256_bytes, skopeo};
use crate::support::{Registry, TestContext, Variant, fixture_layout, media::*, push_fixture};

const PAGE: &str = "one page for every platform\n";

/// A one-file site; `stamp` is its mtime on disk (the image must not depend on it).
fn site(dir: &Path, stamp: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let page = dir.join("index.html");
    std::fs::write(&page, PAGE).unwrap();
    run(std::process::Command::new("touch")
        .arg("-d")
        .arg(format!("@{stamp}"))
        .arg(&page));
}

/// `build --json --platform linux/amd64,linux/arm64` of `site` on `from` to `outputs`.
fn build_two(ctx: &TestContext, from: &str, site: &Path, outputs: &[String]) -> Value {
    let mut cmd = ctx.cmd([
        "build",
        "--json",
        "--from",
        from,
        "--platform",
        "linux/amd64,linux/arm64",
        "--layer",
        &format!("{}:/srv/www", site.display()),
        "--cmd",
        r#"["/bin/busybox","httpd","-f","-p","8080","-h","/srv/www"]"#,
        "--expose",
        "8080",
    ]);
    for o in outputs {
        cmd.args(["-o", o]);
    }
    cmd.env_remove("SOURCE_DATE_EPOCH");
    crate::support::Output::of(&mut cmd).success().json()
}

fn skopeo_raw(location: &str) -> Vec<u8> {
    run(skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(location))
    .stdout
}

fn digests(layers: &Value) -> Vec<String> {
    layers
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_two_platform_build_writes_one_index_to_a_registry_and_both_layouts() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "multi/base", "1", Variant::MultiPlatformIndex);
    let base_images = &base.index.as_ref().expect("an index fixture").images;
    let ctx = TestContext::new();
    let src = ctx.path("site");
    site(&src, 1_700_000_000);
    let dir = ctx.path("layout");
    let archive = ctx.path("index.tar");
    let v = build_two(
        &ctx,
        &base.reference,
        &src,
        &[
            registry.reference("multi/built:1"),
            format!("oci:{}:v1", dir.display()),
            format!("oci-archive:{}:v1", archive.display()),
        ],
    );
    let index_digest = v["index"]["digest"].as_str().unwrap().to_string();
    assert_eq!(v["index"]["media_type"], OCI_INDEX);
    assert_eq!(
        v["index"]["platforms"],
        json!(["linux/amd64", "linux/arm64/v8"])
    );

    // skopeo reads the index from the registry: two manifests, with the platforms the
    // base's index gave them (the attestation entry is no platform and stays out).
    let raw = registry.skopeo_inspect("multi/built:1", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), index_digest);
    assert_eq!(v["index"]["manifest_bytes"], raw.len());
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index:#}");
    assert_eq!(
        manifests[0]["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(
        manifests[1]["platform"],
        json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
    );

    // Each image: the base's layers of its platform, then the one app layer, whose blob
    // is the same in both.
    let mut app_layers = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        let digest = m["digest"].as_str().unwrap();
        let raw_image = registry.skopeo_inspect(&format!("multi/built@{digest}"), &["--raw"]);
        assert_eq!(sha256_bytes(&raw_image), digest);
        assert_eq!(m["size"], raw_image.len());
        let image: Value = serde_json::from_slice(&raw_image).unwrap();
        let layers = digests(&image["layers"]);
        let base_layers: Vec<String> = base_images[i]
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect();
        assert_eq!(layers[..layers.len() - 1], base_layers[..], "image {i}");
        app_layers.push(layers.last().unwrap().clone());
        // The JSON's image object is this image, and names the index.
        let reported = &v["images"][i];
        assert_eq!(reported["digest"], digest);
        assert_eq!(reported["platform"], base_images[i].platform);
        assert_eq!(reported["index_digest"], index_digest);
        assert_eq!(digests(&reported["layers"]), layers);
    }
    assert_eq!(app_layers[0], app_layers[1], "one app layer blob for both");
    assert!(
        !base_images[1]
            .layers
            .iter()
            .any(|l| l.digest == app_layers[0])
    );

    // The layouts hold the index itself under the tag, as the registry does.
    assert_eq!(skopeo_raw(&format!("oci:{}:v1", dir.display())), raw);
    assert_eq!(
        skopeo_raw(&format!("oci-archive:{}:v1", archive.display())),
        raw
    );
    for o in v["outputs"].as_array().unwrap() {
        let digest = o.get("manifest_digest").or_else(|| o.get("digest"));
        assert_eq!(digest.unwrap(), &json!(index_digest), "{o:#}");
    }
    // skopeo copies the whole index out of the archive, verifying every blob.
    let copied = ctx.path("copied");
    run(skopeo()
        .args(["copy", "--quiet", "--all"])
        .arg(format!("oci-archive:{}:v1", archive.display()))
        .arg(format!("oci:{}:c", copied.display())));
    assert_eq!(skopeo_raw(&format!("oci:{}:c", copied.display())), raw);
}

#[test]
fn two_builds_of_the_same_inputs_give_one_index_digest() {
    let base = fixture_layout(Variant::MultiPlatformIndex);
    let built: Vec<String> = [1_000_000_000, 1_700_000_000]
        .iter()
        .map(|stamp| {
            // A fresh cache, directory and mtime each time.
            let ctx = TestContext::new();
            let src = ctx.path("checkout/site");
            site(&src, *stamp);
            let out = ctx.path("out");
            let v = build_two(
                &ctx,
                &base.oci_ref(),
                &src,
                &[format!("oci:{}:v1", out.display())],
            );
            let digest = v["index"]["digest"].as_str().unwrap().to_string();
            assert_eq!(
                sha256_bytes(&skopeo_raw(&format!("oci:{}:v1", out.display()))),
                digest
            );
            digest
        })
        .collect();
    assert_eq!(built[0], built[1], "same inputs, same index");
}

#[test]
fn a_docker_manifest_list_base_gives_a_list_to_registries_and_an_oci_index_to_layouts() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "list/base", "1", Variant::DockerManifestList);
    let ctx = TestContext::new();
    let src = ctx.path("site");
    site(&src, 0);
    let dir = ctx.path("layout");
    let v = build_two(
        &ctx,
        &base.reference,
        &src,
        &[
            registry.reference("list/built:1"),
            format!("oci:{}:v1", dir.display()),
        ],
    );
    assert_eq!(v["index"]["media_type"], DOCKER_LIST);
    let raw = registry.skopeo_inspect("list/built:1", &["--raw"]);
    assert_eq!(sha256_bytes(&raw), v["index"]["digest"].as_str().unwrap());
    let list: Value = serde_json::from_slice(&raw).unwrap();
    for m in list["manifests"].as_array().unwrap() {
        assert_eq!(m["mediaType"], DOCKER_MANIFEST);
    }
    // A layout holds OCI manifests only: the list is rewritten, as skopeo would.
    let layout_raw = skopeo_raw(&format!("oci:{}:v1", dir.display()));
    let layout: Value = serde_json::from_slice(&layout_raw).unwrap();
    assert_eq!(layout["mediaType"], OCI_INDEX);
    assert_eq!(v["outputs"][1]["converted_to_oci"], true);
    assert_eq!(
        v["outputs"][1]["manifest_digest"],
        sha256_bytes(&layout_raw)
    );
    let listed = list["manifests"].as_array().unwrap();
    let converted = layout["manifests"].as_array().unwrap();
    assert_eq!(converted.len(), listed.len());
    for (c, l) in converted.iter().zip(listed) {
        assert_eq!(c["platform"], l["platform"]);
        assert_eq!(c["mediaType"], OCI_MANIFEST);
        // The rewritten manifest names the same blobs with OCI media types.
        let blob = |dir: &Path, d: &Value| {
            let hex = &d.as_str().unwrap()["sha256:".len()..];
            serde_json::from_slice::<Value>(
                &std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap(),
            )
            .unwrap()
        };
        let oci = blob(&dir, &c["digest"]);
        let docker: Value = serde_json::from_slice(&registry.skopeo_inspect(
            &format!("list/built@{}", l["digest"].as_str().unwrap()),
            &["--raw"],
        ))
        .unwrap();
        assert_eq!(oci["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(oci["config"]["digest"], docker["config"]["digest"]);
        assert_eq!(digests(&oci["layers"]), digests(&docker["layers"]));
    }
}

#[test]
fn a_docker_archive_of_a_multi_platform_build_is_refused_before_anything_is_built() {
    let base = fixture_layout(Variant::MultiPlatformIndex);
    let ctx = TestContext::new();
    let src = ctx.path("site");
    site(&src, 0);
    let file = ctx.path("image.tar");
    let layout = ctx.path("layout");
    ctx.run([
        "build",
        "--from",
        &base.oci_ref(),
        "--platform",
        "linux/amd64,linux/arm64",
        "--layer",
        &format!("{}:/srv/www", src.display()),
        "-o",
        &format!("oci:{}:v1", layout.display()),
        "-o",
        &format!("docker-archive:{}", file.display()),
    ])
    .failure(2)
    .stderr_contains(&format!(
        "error: --output docker-archive:{}: a docker-archive holds one image, not the index of a 2-platform build",
        file.display()
    ))
    .stderr_contains("hint: pick one --platform for a docker-archive");
    assert!(!file.exists() && !layout.exists());
    assert!(
        !ctx.path("cache/blobs").exists(),
        "nothing was pulled or built"
    );
}

#[test]
fn a_base_without_an_asked_platform_is_refused_naming_what_it_has() {
    let ctx = TestContext::new();
    let src = ctx.path("site");
    site(&src, 0);
    let out = ctx.path("out");
    let build = |from: &str, platforms: &str| {
        ctx.run([
            "build",
            "--from",
            from,
            "--platform",
            platforms,
            "--layer",
            &format!("{}:/srv/www", src.display()),
            "-o",
            &format!("oci:{}:v1", out.display()),
        ])
    };
    let multi = fixture_layout(Variant::MultiPlatformIndex);
    build(&multi.oci_ref(), "linux/amd64,linux/s390x")
        .failure(2)
        .stderr_contains(&format!(
            "error: the base {} has no image for linux/s390x (it has linux/amd64, linux/arm64/v8)",
            multi.oci_ref()
        ))
        .stderr_contains("hint: leave linux/s390x out of --platform");
    // Every platform is looked up before a blob is pulled: linux/amd64 was not.
    let pulled: Vec<_> = std::fs::read_dir(ctx.path("cache/blobs/sha256"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(pulled, Vec::<std::ffi::OsString>::new());
    let single = fixture_layout(Variant::Oci);
    build(&single.oci_ref(), "linux/amd64,linux/arm64")
        .failure(2)
        .stderr_contains("is a single-platform image, not an index")
        .stderr_contains("hint: a multi-platform build needs a base that is an index");
    build(&multi.oci_ref(), "linux/amd64,linux/amd64")
        .failure(2)
        .stderr_contains("names linux/amd64 twice");
    assert!(!out.exists(), "nothing was written");
}
