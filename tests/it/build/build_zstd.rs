//! `ocibench build --compression zstd`: the same digest on one core and on all of
//! them, layers the zstd CLI decodes to the config's diff_ids, an OCI image even on
//! a Docker base, and a bad `--compression` refused before any work.

use std::path::Path;

use crate::support::tools::{run_stdout, skopeo};
use crate::support::zstd_fixture::OCI_LAYER_ZSTD;
use crate::support::{Output, Registry, TestContext, Variant, fixture_layout, push_fixture};

/// An app tree with 12 MiB of text-like data: several of libzstd's jobs at level 3,
/// so its workers really split the layer.
fn app_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "hello from a zstd layer\n").unwrap();
    let mut data = Vec::with_capacity(12 << 20);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while data.len() < 12 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(format!("line {} of {:x}\n", x % 1000, x >> 40).as_bytes());
    }
    std::fs::write(dir.join("data.txt"), data).unwrap();
}

fn build(ctx: &TestContext, one_core: bool, args: &[&str]) -> serde_json::Value {
    let mut cmd = if one_core {
        // available_parallelism follows the affinity mask: one thread.
        let mut c = crate::support::tools::command("taskset", "util-linux");
        c.args(["-c", "0"]).arg(env!("CARGO_BIN_EXE_ocibench"));
        let sealed = ctx.cmd(["build", "--json"]);
        for (k, v) in sealed.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.current_dir(sealed.get_current_dir().unwrap());
        c.args(["build", "--json"]);
        c
    } else {
        ctx.cmd(["build", "--json"])
    };
    cmd.args(args).env_remove("SOURCE_DATE_EPOCH");
    Output::of(&mut cmd).success().json()
}

#[test]
fn zstd_build_is_the_same_on_one_core_and_all_and_decodes_with_the_cli() {
    let base = fixture_layout(Variant::Oci);
    let ctx = TestContext::new();
    let src = ctx.path("app");
    app_tree(&src);
    let layer = format!("{}:/srv", src.display());
    let mut digests = Vec::new();
    for (one_core, out) in [(true, "one"), (false, "all")] {
        let dest = format!("oci:{}:v1", ctx.path(out).display());
        let v = build(
            &ctx,
            one_core,
            &[
                "--from",
                &base.oci_ref(),
                "--layer",
                &layer,
                "--compression",
                "zstd",
                "-o",
                &dest,
            ],
        );
        digests.push(v["image"]["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1], "one core and all cores");

    // The layout as skopeo reads it: the base layer kept, the new one zstd, and
    // `zstd -dc` of it hashing to the config's diff_id.
    let dest = format!("oci:{}:v1", ctx.path("one").display());
    let raw: serde_json::Value =
        serde_json::from_str(&run_stdout(skopeo().args(["inspect", "--raw", &dest]))).unwrap();
    assert_eq!(raw["layers"][0]["digest"], base.image.layers[0].digest);
    assert_eq!(raw["layers"][1]["mediaType"], OCI_LAYER_ZSTD);
    let config: serde_json::Value = serde_json::from_str(&run_stdout(
        skopeo().args(["inspect", "--config", "--raw", &dest]),
    ))
    .unwrap();
    let blob = crate::support::layout::blob_path(
        &ctx.path("one"),
        raw["layers"][1]["digest"].as_str().unwrap(),
    );
    let unzstd = run_stdout(std::process::Command::new("bash").args([
        "-c",
        r#"set -o pipefail; zstd -dc -- "$1" | sha256sum"#,
        "unzstd",
        blob.to_str().unwrap(),
    ]));
    assert_eq!(
        format!("sha256:{}", &unzstd[..64]),
        config["rootfs"]["diff_ids"][1].as_str().unwrap()
    );

    // The level is part of the image.
    let dest = format!("oci:{}:v1", ctx.path("nineteen").display());
    let v = build(
        &ctx,
        false,
        &[
            "--from",
            &base.oci_ref(),
            "--layer",
            &layer,
            "--compression",
            "zstd:19",
            "-o",
            &dest,
        ],
    );
    assert_ne!(v["image"]["digest"], digests[0].as_str());
    let l3 = raw["layers"][1]["size"].as_u64().unwrap();
    let l19 = v["image"]["layers"][1]["compressed_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        l19 < l3,
        "zstd:19 ({l19} bytes) not smaller than zstd:3 ({l3})"
    );
}

#[test]
fn zstd_on_a_docker_base_makes_an_oci_image_with_the_base_blobs() {
    let registry = Registry::start();
    let base = push_fixture(&registry, "busybox", "v2s2", Variant::DockerV2s2);
    let ctx = TestContext::new();
    let src = ctx.path("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), "zstd\n").unwrap();
    let layer = format!("{}:/www", src.display());
    for (compression, manifest_type, base_layer_type) in [
        (
            "gzip",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            "zstd",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
    ] {
        // To the registry: an OCI layout would convert a Docker image anyway.
        let repo_tag = format!("app:{compression}");
        let dest = registry.reference(&repo_tag);
        let v = build(
            &ctx,
            false,
            &[
                "--from",
                &base.reference,
                "--layer",
                &layer,
                "--compression",
                compression,
                "--tls-verify=false",
                "-o",
                &dest,
            ],
        );
        assert_eq!(v["image"]["media_type"], manifest_type, "{compression}");
        let raw: serde_json::Value =
            serde_json::from_slice(&registry.skopeo_inspect(&repo_tag, &["--raw"])).unwrap();
        assert_eq!(raw["mediaType"], manifest_type, "{compression}");
        assert_eq!(
            raw["layers"][0]["mediaType"], base_layer_type,
            "{compression}"
        );
        assert_eq!(raw["layers"][0]["digest"], base.layers[0].digest);
    }
}

#[test]
fn bad_compression_is_a_usage_error() {
    let ctx = TestContext::new();
    let out = ctx
        .run([
            "build",
            "--from",
            "scratch",
            "--compression",
            "zstd:23",
            "-o",
            "oci:out",
        ])
        .failure(2);
    assert!(
        out.stderr.contains(
            "error: --compression \"zstd:23\": the zstd level must be 1 to 22\nhint: use gzip"
        ),
        "{}",
        out.stderr
    );
}
