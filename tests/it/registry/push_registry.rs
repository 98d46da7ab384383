//! `push` (and `build --output docker://`) against the real Distribution registry, judged
//! by independent readers (skopeo, podman, the registry's storage and access log): the
//! pushed image reads back with the same digest and runs; a re-push sends no blob; base
//! layers are mounted from the repository they were pulled from; large blobs go up in
//! PATCH chunks.

use crate::support::podman::{LoadedImage, podman, serve_and_get};
use crate::support::rootfs::INDEX_HTML;
use crate::support::tools::{run_stdout, sha256_file};
use crate::support::{
    LoggedRequest, Registry, TestContext, Variant, fixture_layout, push_fixture, run,
};

use ocibench::oci::digest::Digest;
use ocibench::oci::push::{PushOptions, push};
use ocibench::oci::reference::ImageReference;
use ocibench::oci::registry::RegistryClient;
use ocibench::oci::store::BlobStore;
use ocibench::progress::NoProgress;

/// `podman pull` of `repo_tag`; returns podman's record of the manifest digest. The
/// image is removed when the guard drops.
fn podman_pull(registry: &Registry, repo_tag: &str) -> (LoadedImage, String) {
    let name = registry.reference(repo_tag);
    let guard = LoadedImage(name.clone());
    run(podman().args(["pull", "-q", "--tls-verify=false", &name]));
    let digest = run_stdout(podman().args(["image", "inspect", "--format", "{{.Digest}}", &name]));
    (guard, digest.trim().to_string())
}

fn upload_writes(requests: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    requests
        .iter()
        .filter(|r| {
            matches!(r.method.as_str(), "POST" | "PATCH" | "PUT")
                && r.path().contains("/blobs/uploads/")
        })
        .collect()
}

/// The `digest=` of a finishing upload PUT.
fn put_digest(r: &LoggedRequest) -> Option<String> {
    let query = r.uri.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "digest")
        .map(|(_, v)| v.into_owned())
}

#[test]
fn pushed_images_read_back_identically_and_run() {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::Oci);
    let ctx = TestContext::new();

    let report = ctx
        .run([
            "push",
            &layout.oci_ref(),
            &registry.docker_ref("pushed/busybox:1"),
            "--json",
        ])
        .success()
        .json();
    let digest = layout.image.manifest_digest.clone();
    assert_eq!(report["digest"], digest, "{report}");
    assert_eq!(report["media_type"], layout.image.media_type, "{report}");
    assert_eq!(report["uploaded_blobs"], 1 + layout.image.layers.len());
    registry.assert_holds("pushed/busybox:1", &digest);
    let (_image, podman_digest) = podman_pull(&registry, "pushed/busybox:1");
    assert_eq!(podman_digest, digest);

    // The pushed image runs: its httpd serves the fixture page.
    let (_container, page) = serve_and_get(&registry.reference("pushed/busybox:1"), "pushed");
    assert!(page.contains(" 200 "), "{page}");
    assert!(page.ends_with(INDEX_HTML), "{page}");

    // build --output docker://: the built digest is what the registry serves.
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "built\n").unwrap();
    let built = ctx
        .run([
            "build",
            "--json",
            "--from",
            &registry.reference("pushed/busybox:1"),
            "--layer",
            &format!("{}:/www/built", app.display()),
            "--output",
            &registry.docker_ref("built/busybox:1"),
        ])
        .success()
        .json();
    let built_digest = built["image"]["digest"].as_str().unwrap().to_string();
    assert_eq!(built["outputs"][0]["digest"], built_digest, "{built}");
    registry.assert_holds("built/busybox:1", &built_digest);
    let (_built_image, podman_digest) = podman_pull(&registry, "built/busybox:1");
    assert_eq!(podman_digest, built_digest);
}

#[test]
fn repush_of_an_unchanged_image_uploads_nothing() {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::TwoLayers);
    let ctx = TestContext::new();
    let args = [
        "push",
        &layout.oci_ref(),
        &registry.docker_ref("app:1"),
        "--json",
    ];
    let first = ctx.run(args).success().json();
    let all_bytes: u64 = layout.image.config_bytes
        + layout
            .image
            .layers
            .iter()
            .map(|l| l.compressed_bytes)
            .sum::<u64>();
    assert_eq!(first["uploaded_bytes"], all_bytes, "{first}");
    assert_eq!(first["uploaded_blobs"], 3, "{first}");

    let mark = registry.mark();
    let again = ctx.run(args).success().json();
    let requests = registry.requests_since(mark);
    assert_eq!(again["uploaded_bytes"], 0, "{again}");
    assert_eq!(again["uploaded_blobs"], 0, "{again}");
    assert_eq!(again["mounted_blobs"], 0, "{again}");
    assert_eq!(again["existing_blobs"], 3, "{again}");
    assert_eq!(again["digest"], layout.image.manifest_digest);
    assert!(upload_writes(&requests).is_empty(), "{requests:#?}");
    let heads = requests.iter().filter(|r| r.method == "HEAD").count();
    assert_eq!(heads, 3, "{requests:#?}");
}

#[test]
fn base_layers_are_mounted_from_the_repository_they_came_from() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "library/base", "1", Variant::Oci);
    let ctx = TestContext::new();
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hello.txt"), "mounted base, uploaded app\n").unwrap();

    let mark = registry.mark();
    let built = ctx
        .run([
            "build",
            "--json",
            "--from",
            &base.reference,
            "--layer",
            &format!("{}:/app", app.display()),
            "--output",
            &registry.docker_ref("team/app:1"),
        ])
        .success()
        .json();
    let requests = registry.requests_since(mark);
    let out = &built["outputs"][0];
    assert_eq!(out["mounted_blobs"], base.layers.len(), "{built}");
    assert_eq!(
        out["uploaded_blobs"], 2,
        "config and the new layer: {built}"
    );

    let base_layer = &base.layers[0].digest;
    let mount = requests
        .iter()
        .find(|r| r.method == "POST" && r.uri.contains("mount="))
        .unwrap_or_else(|| panic!("no mount request: {requests:#?}"));
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(mount.uri.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert!(
        mount.path().starts_with("/v2/team/app/blobs/uploads/"),
        "{mount:?}"
    );
    assert!(
        query.contains(&("mount".into(), base_layer.clone())),
        "{mount:?}"
    );
    assert!(
        query.contains(&("from".into(), "library/base".into())),
        "{mount:?}"
    );
    assert_eq!(mount.status, 201, "{mount:?}");

    // Only the new blobs went up; the base layer's bytes were never sent.
    let layers = built["image"]["layers"].as_array().unwrap();
    assert_eq!(layers[0]["digest"], *base_layer);
    let new_layer = layers[1]["digest"].as_str().unwrap();
    let puts: Vec<String> = upload_writes(&requests)
        .into_iter()
        .filter_map(put_digest)
        .collect();
    assert!(!puts.contains(base_layer), "{requests:#?}");
    assert!(puts.iter().any(|d| d == new_layer), "{requests:#?}");
    assert!(
        !requests.iter().any(|r| r.method == "PATCH"),
        "{requests:#?}"
    );
    assert!(registry.repo_has_layer("team/app", base_layer));
    registry.assert_holds("team/app:1", built["image"]["digest"].as_str().unwrap());
}

#[test]
fn a_blob_larger_than_the_chunk_size_goes_up_in_patches() {
    // Pulled from another registry, so nothing can be mounted: every byte is uploaded.
    let origin = Registry::start();
    let source = push_fixture(&origin, "src", "1", Variant::Oci);
    let registry = Registry::start();
    let ctx = TestContext::new();
    let pulled = ctx
        .run(["pull", "--json", &source.reference])
        .success()
        .json();
    let manifest_digest: Digest = pulled["image"]["digest"].as_str().unwrap().parse().unwrap();
    let media_type = pulled["image"]["media_type"].as_str().unwrap();

    const CHUNK: u64 = 64 * 1024;
    let layer = &source.layers[0];
    assert!(layer.compressed_bytes > 4 * CHUNK, "{layer:?}");
    let store = BlobStore::open(&ctx.cache_dir).unwrap();
    let client = RegistryClient::builder().build();
    let target: ImageReference = registry.reference("chunked:1").parse().unwrap();
    let mark = registry.mark();
    let report = push(
        &store,
        &client,
        &manifest_digest,
        media_type,
        &target,
        &PushOptions {
            chunk_bytes: CHUNK,
            ..PushOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    let requests = registry.requests_since(mark);
    assert_eq!(report.uploaded_blobs, 2);
    assert_eq!(
        report.uploaded_bytes,
        layer.compressed_bytes + source.config_bytes
    );

    let patches: Vec<_> = requests.iter().filter(|r| r.method == "PATCH").collect();
    let want = layer.compressed_bytes.div_ceil(CHUNK) as usize;
    assert_eq!(patches.len(), want, "{requests:#?}");
    assert!(patches.iter().all(|r| r.status == 202), "{patches:#?}");
    let finish = requests
        .iter()
        .find(|r| r.method == "PUT" && put_digest(r).as_deref() == Some(&layer.digest))
        .unwrap_or_else(|| panic!("no finishing PUT: {requests:#?}"));
    assert_eq!(finish.status, 201);
    registry.assert_holds("chunked:1", &source.manifest_digest);
}

#[test]
fn an_oci_layout_is_pushed_in_place_and_the_registry_rejects_a_corrupt_one() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let fixture = fixture_layout(Variant::Oci);
    let dir = ctx.path("layout");
    run(std::process::Command::new("cp")
        .arg("-r")
        .arg(&fixture.dir)
        .arg(&dir));
    let oci_ref = format!("oci:{}:{}", dir.display(), fixture.tag);

    let report = ctx
        .run([
            "push",
            &oci_ref,
            &registry.docker_ref("inplace:1"),
            "--json",
        ])
        .success()
        .json();
    assert_eq!(report["digest"], fixture.image.manifest_digest);
    registry.assert_holds("inplace:1", &fixture.image.manifest_digest);
    // Read in place: nothing was copied into the cache, nothing written into the layout.
    let layer_hex = &fixture.image.layers[0].digest["sha256:".len()..];
    assert!(!ctx.cache_dir.join("blobs/sha256").join(layer_hex).exists());
    assert!(!dir.join("ocibench").exists());

    // An index takes the import path, which picks the host's platform (linux/amd64).
    let index = fixture_layout(Variant::MultiPlatformIndex);
    let report = ctx
        .run([
            "push",
            &index.oci_ref(),
            &registry.docker_ref("index:1"),
            "--json",
        ])
        .success()
        .json();
    assert_eq!(report["digest"], index.image.manifest_digest, "{report}");

    // Same size, altered bytes: the registry refuses the upload; nothing is tagged.
    let layer = dir.join("blobs/sha256").join(layer_hex);
    let mut bytes = std::fs::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let out = ctx
        .run(["push", &oci_ref, &registry.docker_ref("corrupt:1")])
        .failure(1);
    assert!(out.stderr.contains(layer_hex), "{}", out.stderr);
    assert!(registry.tags("corrupt").is_empty());
    // The good copy from `inplace:1` is still whole: the bad bytes never replaced it.
    let good = &fixture.image.layers[0].digest;
    assert_eq!(sha256_file(&registry.blob_data_path(good)), *good);
}
