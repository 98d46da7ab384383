//! The cache as something that can go wrong: a blob damaged in place (same size),
//! a damaged `index.json`, a cache shared read-only with another user, and the
//! `cache verify` / `cache prune` commands that find and clear such damage.
//! Judged by hashing what ocibench leaves on disk and by what it reports.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::tools::sha256_file;
use crate::support::{Output, Registry, TestContext, Variant, push_fixture};

fn cached_blob(ctx: &TestContext, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    ctx.cache_dir.join("blobs/sha256").join(hex)
}

/// Flips bytes in the middle of `path`, keeping its length; with `keep_mtime` its
/// modification time is put back too (as bit rot, or a careless tool, would leave it).
fn flip_bytes(path: &Path, keep_mtime: bool) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let before = std::fs::metadata(path).unwrap();
    let mtime = before.modified().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let start = before.len() / 2;
    let mut buf = [0u8; 4];
    f.seek(SeekFrom::Start(start)).unwrap();
    f.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b ^= 0xff;
    }
    f.seek(SeekFrom::Start(start)).unwrap();
    f.write_all(&buf).unwrap();
    if keep_mtime {
        f.set_modified(mtime).unwrap();
    }
    drop(f);
    assert_eq!(std::fs::metadata(path).unwrap().len(), before.len());
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

#[test]
fn a_damaged_cached_layer_is_fetched_again_by_pull_size_and_build() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.run(["pull", "--json", &want.reference]).success();
    let layer = &want.layers[0].digest;
    let path = cached_blob(&ctx, layer);

    // pull: the damaged layer is noticed (its file changed since it was verified)
    // and transferred again.
    flip_bytes(&path, false);
    let mark = registry.mark();
    let again = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(again["transferred_blobs"], 1, "{again:#}");
    assert_eq!(registry.blob_gets_since(mark), 1);
    assert_eq!(sha256_file(&path), *layer, "the good blob is back");

    // size: the same.
    flip_bytes(&path, false);
    ctx.run(["size", "--json", &want.reference]).success();
    assert_eq!(sha256_file(&path), *layer);

    // build --output oci:: the base is checked before it is used, so the output
    // holds the registry's bytes under their digest.
    flip_bytes(&path, false);
    let out = ctx.path("out");
    ctx.run([
        "build",
        "--from",
        &want.reference,
        "--output",
        &format!("oci:{}", out.display()),
    ])
    .success();
    let written = out.join("blobs/sha256").join(hex_of(layer));
    assert_eq!(sha256_file(&written), *layer);
}

#[test]
fn damage_that_keeps_the_mtime_is_refused_on_output_and_repaired_by_cache_verify() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference]).success();
    let layer = &want.layers[0].digest;
    let path = cached_blob(&ctx, layer);
    flip_bytes(&path, true);

    // Every output copies (or links) the blob out of the cache: each verifies it.
    for dest in ["oci:out-dir", "oci-archive:out.tar"] {
        ctx.run(["build", "--from", &want.reference, "--output", dest])
            .failure(1)
            .stderr_contains("cache corrupt")
            .stderr_contains(&format!("blob {layer}"))
            .stderr_contains("hint: run `ocibench cache verify --repair`");
    }
    assert!(!ctx.path("out-dir").exists(), "no partial oci: output");
    let left = crate::support::tools::listing(&ctx.work_dir);
    assert!(left.is_empty(), "debris in the work dir: {left:?}");

    // verify finds it (exit 1), touching nothing.
    let out = ctx.run(["cache", "verify", "--json"]).failure(1);
    let report = out.json();
    assert_eq!(report["corrupt"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["corrupt"][0]["digest"], layer.as_str());
    assert!(
        out.stderr
            .contains("hint: run `ocibench cache verify --repair`")
    );
    assert!(path.exists());

    // --repair removes the blob and the index entry that needs it...
    let report = ctx
        .run(["cache", "verify", "--repair", "--json"])
        .success()
        .json();
    assert_eq!(report["removed_blobs"][0], layer.as_str(), "{report:#}");
    assert_eq!(report["removed_entries"][0], want.reference.as_str());
    assert!(!path.exists());
    // ...so the next pull fetches it again, and the cache is whole.
    let again = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(again["transferred_blobs"], 1, "{again:#}");
    let clean = ctx.run(["cache", "verify", "--json"]).success().json();
    assert_eq!(clean["corrupt"].as_array().unwrap().len(), 0, "{clean:#}");
    ctx.run([
        "build",
        "--from",
        &want.reference,
        "--output",
        "oci:out-dir",
    ])
    .success();
}

#[test]
fn cache_prune_removes_unreachable_blobs_and_debris_but_not_tagged_images() {
    let registry = Registry::start();
    let kept = push_fixture(&registry, "kept", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run(["pull", &kept.reference]).success();
    // A built image is not tagged in the cache: its new layer and config are
    // unreachable once written out.
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("f"), vec![7u8; 5000]).unwrap();
    ctx.run([
        "build",
        "--from",
        &kept.reference,
        "--layer",
        &format!("{}:/app", app.display()),
        "--output",
        "oci:built",
    ])
    .success();
    // Debris of a killed process: unlocked temporaries.
    let debris = ctx.cache_dir.join("blobs/sha256/.tmp-killed");
    std::fs::write(&debris, vec![0u8; 1000]).unwrap();
    let unpack = ctx.cache_dir.join("ocibench/.unpack-killed");
    std::fs::create_dir_all(unpack.join("blobs")).unwrap();
    std::fs::write(unpack.join("blobs/x"), vec![0u8; 2000]).unwrap();

    let report = ctx.run(["cache", "prune", "--json"]).success().json();
    assert_eq!(
        report["removed_blobs"], 3,
        "layer, config, manifest: {report:#}"
    );
    assert_eq!(report["removed_temporaries"], 2, "{report:#}");
    assert!(
        report["freed_bytes"].as_u64().unwrap() >= 3000,
        "{report:#}"
    );
    assert!(!debris.exists() && !unpack.exists());
    // The pulled image is untouched: sized from the cache, verified clean.
    let mark = registry.mark();
    ctx.run(["size", &kept.reference]).success();
    assert_eq!(registry.blob_gets_since(mark), 0);
    ctx.run(["cache", "verify"]).success();
    // Human output says what was freed.
    ctx.run(["cache", "prune"])
        .success()
        .stdout_contains("removed 0 blobs");
}

#[test]
fn a_cache_is_readable_by_others_and_sizes_read_only() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference]).success();
    for layer in &want.layers {
        let mode = std::fs::metadata(cached_blob(&ctx, &layer.digest))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "layer {}", layer.digest);
    }
    for f in ["index.json", "oci-layout"] {
        let mode = std::fs::metadata(ctx.cache_dir.join(f)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o644, "{f}");
    }
    for d in ["blobs", "blobs/sha256", "ocibench"] {
        let mode = std::fs::metadata(ctx.cache_dir.join(d)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o755, "{d}");
    }
    // Another user (nobody), who can read but not write the cache: `size` of a
    // cached image works.
    let root = ctx.root();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_ocibench"));
    let mut cmd = with_ctx_env(&ctx, cmd);
    cmd.args(["size", "--json", &want.reference]);
    let out = Output::of(&mut cmd).success();
    assert_eq!(out.json()["digest"], want.manifest_digest);

    // The same on a read-only mount of the cache.
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$OCIBENCH_CACHE" "$OCIBENCH_CACHE" && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_ocibench"));
    let mut cmd = with_ctx_env(&ctx, cmd);
    cmd.args(["size", "--json", &want.reference]);
    let out = Output::of(&mut cmd).success();
    assert_eq!(out.json()["digest"], want.manifest_digest);
}

/// `cmd` with the environment `TestContext::cmd` gives the binary.
fn with_ctx_env(ctx: &TestContext, mut cmd: Command) -> Command {
    let template = ctx.cmd(["x"]);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(&ctx.work_dir);
    cmd
}

#[test]
fn a_damaged_index_json_says_how_to_recover() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference]).success();
    std::fs::write(ctx.cache_dir.join("index.json"), b"{\"manifests\": [").unwrap();
    ctx.run(["pull", &want.reference])
        .failure(1)
        .stderr_contains("index.json")
        .stderr_contains("hint: run `ocibench cache verify --repair`");
    let report = ctx
        .run(["cache", "verify", "--repair", "--json"])
        .success()
        .json();
    assert_eq!(report["index_reset"], true, "{report:#}");
    // The blobs were kept: nothing is transferred again.
    let again = ctx
        .run(["pull", "--json", &want.reference])
        .success()
        .json();
    assert_eq!(again["transferred_blobs"], 0, "{again:#}");
}

#[test]
fn a_push_refuses_a_damaged_cached_blob() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::TwoLayers);
    let ctx = TestContext::new();
    ctx.run(["pull", &want.reference]).success();
    let layer = &want.layers[0].digest;
    flip_bytes(&cached_blob(&ctx, layer), true);
    // Another registry: nothing to mount from, the blob is uploaded from the cache.
    let other = Registry::start();
    let dest = format!("{}/copy:1", other.addr());
    ctx.run(["push", &want.reference, &dest])
        .failure(1)
        .stderr_contains("cache corrupt")
        .stderr_contains(&format!("blob {layer}"))
        .stderr_contains("hint: run `ocibench cache verify --repair`");
}

#[test]
fn a_read_only_cache_that_lacks_an_image_says_what_to_do() {
    let registry = Registry::start();
    let want = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    ctx.run(["cache", "verify"]).success();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$OCIBENCH_CACHE" "$OCIBENCH_CACHE" && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_ocibench"));
    let mut cmd = with_ctx_env(&ctx, cmd);
    cmd.args(["pull", &want.reference]);
    Output::of(&mut cmd)
        .failure(1)
        .stderr_contains("Read-only file system")
        .stderr_contains("hint: the cache cannot be written: set --cache-dir or OCIBENCH_CACHE");
}
