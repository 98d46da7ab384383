//! `inspect` against skopeo's answers for the same images: a registry image, an `oci:`
//! layout and a `docker-archive:` (`skopeo inspect`, `--config --raw`, `--raw`), and
//! the platform list of an index against the index skopeo reads. Inspecting by tag
//! reads the manifest and the config only (the registry's log shows no layer GET).

use serde_json::{Value, json};

use crate::support::tools::{self, sha256_bytes};
use crate::support::{Registry, TestContext, Variant, fixture_layout, push_fixture};

/// `ocibench ARGS`, stdout as bytes (exactly: `--raw` and `--config` are byte-exact).
fn ocibench_bytes(ctx: &TestContext, args: &[&str]) -> Vec<u8> {
    let out = ctx.cmd(args).output().expect("run ocibench");
    assert!(
        out.status.success(),
        "ocibench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `skopeo inspect --tls-verify=false EXTRA LOCATION`, stdout as bytes.
fn skopeo_inspect(location: &str, extra: &[&str]) -> Vec<u8> {
    let mut cmd = tools::skopeo();
    cmd.args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(location);
    tools::run(&mut cmd).stdout
}

/// Asserts `ocibench inspect --json` says what `skopeo inspect` says, field by field
/// (skopeo's names mapped to ours). `same_digest`: false for a docker-archive, whose
/// manifest each reader makes up (see the test below).
#[track_caller]
fn assert_agrees(ours: &Value, skopeo: &Value, same_digest: bool) {
    let layers: Vec<&Value> = ours["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let ours_mapped = json!({
        "Name": ours["name"],
        "RepoTags": ours["repo_tags"],
        "Created": ours["created"],
        "DockerVersion": ours["docker_version"].as_str().unwrap_or(""),
        "Labels": ours["config"].get("Labels").cloned().unwrap_or(Value::Null),
        "Architecture": ours["architecture"],
        "Os": ours["os"],
        "Variant": ours["variant"],
        "Layers": layers,
        "Env": ours["config"].get("Env").cloned().unwrap_or(Value::Null),
    });
    let theirs = json!({
        "Name": skopeo.get("Name").cloned().unwrap_or(Value::Null),
        "RepoTags": skopeo["RepoTags"],
        "Created": skopeo["Created"],
        "DockerVersion": skopeo["DockerVersion"],
        "Labels": skopeo["Labels"],
        "Architecture": skopeo["Architecture"],
        "Os": skopeo["Os"],
        "Variant": skopeo.get("Variant").cloned().unwrap_or(Value::Null),
        "Layers": skopeo["Layers"],
        "Env": skopeo["Env"],
    });
    assert_eq!(ours_mapped, theirs, "ours: {ours:#}\nskopeo: {skopeo:#}");
    if same_digest {
        assert_eq!(ours["digest"], skopeo["Digest"]);
    }
}

/// History entries as `[created, created_by, comment, empty_layer]` (absent fields
/// as a config leaves them out: null, false).
fn history_rows(history: &Value) -> Vec<Value> {
    history
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            let field = |k: &str| h.get(k).cloned().unwrap_or(Value::Null);
            json!([
                field("created"),
                field("created_by"),
                field("comment"),
                h.get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ])
        })
        .collect()
}

#[test]
fn inspect_agrees_with_skopeo_for_a_registry_image_a_layout_and_a_docker_archive() {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::Oci);
    let ctx = TestContext::new();
    // An image with labels, an entrypoint, a user and a workdir, in all three places.
    // (Built by ocibench; skopeo is the judge of what inspect reads back.)
    let dir = ctx.path("lay");
    let archive = ctx.path("img.tar");
    let remote = registry.docker_ref("inspect/app:1");
    ctx.run([
        "build",
        "--from",
        &layout.oci_ref(),
        "--label",
        "org.opencontainers.image.title=inspect me",
        "--label",
        "com.example.team=platform",
        "--entrypoint",
        r#"["/bin/busybox","httpd"]"#,
        "--user",
        "1000",
        "--workdir",
        "/www",
        "--output",
        &remote,
        "--output",
        &format!("oci:{}:app", dir.display()),
        "--output",
        &format!("docker-archive:{}:localhost/app:1", archive.display()),
    ])
    .success();
    // A second tag, so RepoTags has something to compare.
    push_fixture(&registry, "inspect/app", "0", Variant::Oci);

    let locations = [
        (remote.clone(), true),
        (format!("oci:{}:app", dir.display()), true),
        (format!("docker-archive:{}", archive.display()), false),
    ];
    for (location, same_digest) in &locations {
        let ours: Value =
            serde_json::from_slice(&ocibench_bytes(&ctx, &["inspect", "--json", location]))
                .expect("inspect --json is JSON");
        let skopeo: Value =
            serde_json::from_slice(&skopeo_inspect(location, &[])).expect("skopeo JSON");
        assert_agrees(&ours, &skopeo, *same_digest);
        assert_eq!(
            ours["config"]["Entrypoint"],
            json!(["/bin/busybox", "httpd"]),
            "{location}"
        );
        assert_eq!(ours["config"]["User"], "1000", "{location}");
        assert_eq!(ours["config"]["WorkingDir"], "/www", "{location}");
        assert_eq!(ours["index"], Value::Null, "{location}");
        // The config exactly as stored: skopeo's `--config --raw`.
        assert_eq!(
            ocibench_bytes(&ctx, &["inspect", "--config", location]),
            skopeo_inspect(location, &["--config", "--raw"]),
            "{location}"
        );
        // History as the config has it.
        let config: Value =
            serde_json::from_slice(&skopeo_inspect(location, &["--config", "--raw"])).unwrap();
        assert_eq!(
            history_rows(&ours["history"]),
            history_rows(&config["history"]),
            "{location}"
        );
        if *same_digest {
            // The manifest exactly as served: skopeo's `--raw`.
            let raw = ocibench_bytes(&ctx, &["inspect", "--raw", location]);
            assert_eq!(raw, skopeo_inspect(location, &["--raw"]), "{location}");
            assert_eq!(ours["digest"], sha256_bytes(&raw), "{location}");
        }
    }
    let ours: Value =
        serde_json::from_slice(&ocibench_bytes(&ctx, &["inspect", "--json", &remote])).unwrap();
    assert_eq!(ours["repo_tags"], json!(["0", "1"]));
    assert_eq!(ours["name"], registry.reference("inspect/app"));
}

/// skopeo's made-up manifest of a docker-archive labels every layer `tar.gzip`, also
/// an uncompressed one; ocibench's says `tar` (what the bytes are), so the two digests
/// differ while config, layers and every other field agree (checked above).
#[test]
fn a_docker_archive_manifest_names_its_layers_as_they_are() {
    let ctx = TestContext::new();
    let archive = ctx.path("img.tar");
    crate::support::export_fixture(
        Variant::Oci,
        &format!("docker-archive:{}:localhost/app:1", archive.display()),
    );
    let location = format!("docker-archive:{}", archive.display());
    let ours: Value =
        serde_json::from_slice(&ocibench_bytes(&ctx, &["inspect", "--raw", &location])).unwrap();
    let theirs: Value = serde_json::from_slice(&skopeo_inspect(&location, &["--raw"])).unwrap();
    assert_eq!(ours["config"], theirs["config"]);
    let digests = |m: &Value| -> Vec<Value> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["digest"], l["size"]]))
            .collect()
    };
    assert_eq!(digests(&ours), digests(&theirs));
    for l in ours["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar"
        );
    }
}

#[test]
fn inspect_of_an_index_lists_its_platforms_as_the_index_has_them() {
    let registry = Registry::start();
    let image = push_fixture(&registry, "multi/app", "1", Variant::MultiPlatformIndex);
    let index = image.index.as_ref().expect("an index fixture");
    let ctx = TestContext::new();
    let location = registry.docker_ref("multi/app:1");
    let mark = registry.mark();
    let ours: Value =
        serde_json::from_slice(&ocibench_bytes(&ctx, &["inspect", "--json", &location])).unwrap();
    // Manifest and config only: the one blob downloaded is the chosen image's config.
    let blob_gets: Vec<String> = registry
        .requests_since(mark)
        .iter()
        .filter(|r| r.is_blob_get())
        .map(|r| r.path().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(blob_gets, vec![image.config_digest.as_str()]);

    let raw_index = registry.skopeo_inspect("multi/app:1", &["--raw"]);
    assert_eq!(sha256_bytes(&raw_index), index.digest);
    let skopeo_index: Value = serde_json::from_slice(&raw_index).unwrap();
    let expected: Vec<Value> = skopeo_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let platform = match p.get("variant") {
                Some(v) => format!(
                    "{}/{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap(),
                    v.as_str().unwrap()
                ),
                None => format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
            };
            json!({
                "digest": m["digest"],
                "media_type": m["mediaType"],
                "size": m["size"],
                "platform": platform,
                "attestation": platform == "unknown/unknown",
                "annotations": m.get("annotations").cloned().unwrap_or(json!({})),
            })
        })
        .collect();
    assert_eq!(ours["index"]["manifests"], json!(expected));
    assert_eq!(
        expected.iter().filter(|e| e["attestation"] == true).count(),
        1,
        "the fixture has one attestation entry"
    );
    assert_eq!(ours["digest"], index.digest);
    assert_eq!(ours["media_type"], index.media_type);
    assert_eq!(ours["index"]["chosen"], image.manifest_digest);
    assert_eq!(ours["manifest_digest"], image.manifest_digest);
    // skopeo inspects the host's image of an index too, and names the index's digest.
    let skopeo: Value =
        serde_json::from_slice(&registry.skopeo_inspect("multi/app:1", &[])).unwrap();
    assert_agrees(&ours, &skopeo, true);
    // --raw: the index bytes exactly.
    assert_eq!(
        ocibench_bytes(&ctx, &["inspect", "--raw", &location]),
        raw_index
    );

    // --platform chooses another entry.
    let arm = image.platform_image("linux/arm64/v8");
    let ours: Value = serde_json::from_slice(&ocibench_bytes(
        &ctx,
        &[
            "inspect",
            "--json",
            "--platform",
            "linux/arm64/v8",
            &location,
        ],
    ))
    .unwrap();
    assert_eq!(ours["index"]["chosen"], arm.manifest_digest);
    assert_eq!(ours["manifest_digest"], arm.manifest_digest);
    assert_eq!(ours["variant"], "v8");
    assert_eq!(
        ocibench_bytes(
            &ctx,
            &[
                "inspect",
                "--config",
                "--platform",
                "linux/arm64/v8",
                &location
            ]
        ),
        arm.config
    );

    // The text lists every platform and marks the attestation and the chosen one.
    let text = ctx.run(["inspect", &location]).success().stdout;
    for e in &expected {
        assert!(text.contains(e["platform"].as_str().unwrap()), "{text}");
    }
    assert!(text.contains("(attestation)"), "{text}");
    assert_eq!(text.matches("<- chosen").count(), 1, "{text}");
}
