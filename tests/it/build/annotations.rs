//! `build --annotation` and the base annotations buildkit writes: on the manifest
//! as skopeo reads it back from the registry (`inspect --raw`), none for `scratch`
//! or on a Docker schema 2 manifest (which has no annotations; asking for some
//! there is refused), and `index:` annotations refused where no index is written.

use serde_json::{Value, json};

use crate::support::rootfs::set_modes;
use crate::support::{Registry, TestContext, Variant, push_fixture};

fn app(ctx: &TestContext) -> String {
    let dir = ctx.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "annotated\n").unwrap();
    set_modes(&dir);
    format!("{}:/app", dir.display())
}

#[test]
fn annotations_and_the_base_are_on_the_manifest_skopeo_reads() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run([
        "build",
        "--from",
        &base.reference,
        "--layer",
        &app(&ctx),
        "--annotation",
        "org.opencontainers.image.source=https://example.com/app",
        "--annotation",
        "manifest:com.example.note=a=b",
        "-o",
        &registry.docker_ref("app:annotated"),
    ])
    .success();
    let raw: Value =
        serde_json::from_slice(&registry.skopeo_inspect("app:annotated", &["--raw"])).unwrap();
    assert_eq!(
        raw["annotations"],
        json!({
            "com.example.note": "a=b",
            "org.opencontainers.image.base.digest": base.manifest_digest,
            "org.opencontainers.image.base.name": registry.reference("busybox:1"),
            "org.opencontainers.image.source": "https://example.com/app",
        }),
        "{raw:#}"
    );

    // A multi-platform base: its name points at the index, and so does the digest
    // (annotations.md: the digest of what base.name references).
    let multi = push_fixture(&registry, "multi", "1", Variant::MultiPlatformIndex);
    ctx.run([
        "build",
        "--from",
        &multi.reference,
        "--platform",
        "linux/amd64",
        "--layer",
        &app(&ctx),
        "-o",
        &registry.docker_ref("app:multi"),
    ])
    .success();
    let raw: Value =
        serde_json::from_slice(&registry.skopeo_inspect("app:multi", &["--raw"])).unwrap();
    assert_eq!(
        raw["annotations"],
        json!({
            "org.opencontainers.image.base.digest": multi.index.as_ref().unwrap().digest,
            "org.opencontainers.image.base.name": registry.reference("multi:1"),
        }),
        "{raw:#}"
    );

    // A Docker schema 2 base: the manifest stays without annotations.
    let docker = push_fixture(&registry, "busybox-docker", "1", Variant::DockerV2s2);
    let layer = app(&ctx);
    ctx.run([
        "build",
        "--from",
        &docker.reference,
        "--layer",
        &layer,
        "-o",
        &registry.docker_ref("app:docker"),
    ])
    .success();
    let raw: Value =
        serde_json::from_slice(&registry.skopeo_inspect("app:docker", &["--raw"])).unwrap();
    assert_eq!(raw.get("annotations"), None, "{raw:#}");
    ctx.run([
        "build",
        "--from",
        &docker.reference,
        "--layer",
        &layer,
        "--annotation",
        "k=v",
        "-o",
        &registry.docker_ref("app:docker2"),
    ])
    .failure(2)
    .stderr_contains("has Docker schema 2 media types, whose manifests hold no annotations")
    .stderr_contains("hint: build from an OCI base for annotations");
}

#[test]
fn scratch_has_no_base_and_index_annotations_need_an_index() {
    let ctx = TestContext::new();
    let layer = app(&ctx);
    let out = ctx.path("out");
    ctx.run([
        "build",
        "--from",
        "scratch",
        "--layer",
        &layer,
        "-o",
        &format!("oci:{}:v1", out.display()),
    ])
    .success();
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(out.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.get("annotations"), None, "{manifest:#}");

    ctx.run([
        "build",
        "--from",
        "scratch",
        "--layer",
        &layer,
        "--annotation",
        "index:org.opencontainers.image.title=x",
        "-o",
        &format!("oci:{}:v2", out.display()),
    ])
    .failure(2)
    .stderr_contains("this build writes one image, not an index")
    .stderr_contains("hint: index annotations go on a multi-platform build's index");
    ctx.run([
        "build",
        "--from",
        "scratch",
        "--annotation",
        "manifest-descriptor:k=v",
        "-o",
        &format!("oci:{}:v2", out.display()),
    ])
    .failure(2)
    .stderr_contains("the level \"manifest-descriptor\" is not supported");
}
