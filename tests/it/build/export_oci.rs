//! Exports checked by an independent reader: skopeo reads what `export` writes
//! (`oci:`, `oci-archive:`, `docker-archive:`), copies it, and agrees on digests.
//! Also: determinism, layout updates, and failures that must leave nothing behind.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::store_fixture::Fixture;
use crate::support::tools::{listing, run, run_stdout, skopeo};
use ocibench::oci::manifest::MediaFamily;
use ocibench::oci::publish::{Destination, ExportError, ExportImage, export};
use ocibench::progress::NoProgress;
use serde_json::Value;

fn dest(s: &str) -> Destination {
    Destination::parse(s).unwrap()
}

fn inspect(reference: &str) -> Value {
    serde_json::from_str(&run_stdout(skopeo().args(["inspect", reference]))).unwrap()
}

fn raw(reference: &str) -> Vec<u8> {
    run(skopeo().args(["inspect", "--raw", reference])).stdout
}

/// The tags in the OCI layout `dir`'s `index.json`, in index order.
fn tags(dir: &std::path::Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn oci_dir_is_read_by_skopeo_and_updated_in_place() {
    let fx = Fixture::new(MediaFamily::Oci);
    let dir = fx.path("layout");
    let d = dir.display().to_string();
    let report = fx.export_to(&format!("oci:{d}:v1")).unwrap();
    assert_eq!(report.manifest_digest, fx.image.digest);
    assert_eq!(report.blobs_linked, 3, "{report:?}");

    let r = format!("oci:{d}:v1");
    assert_eq!(raw(&r), fx.image.bytes);
    let info = inspect(&r);
    assert_eq!(info["Digest"], fx.image.digest.to_string());
    assert_eq!(info["Layers"], serde_json::json!(fx.layer_digests()));
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Env"], serde_json::json!(["PATH=/bin"]));

    // Blobs are hard links to the cache's files, readable by all.
    let layer = &fx.image.manifest.layers[0].digest;
    let exported = fs::metadata(dir.join("blobs/sha256").join(layer.hex())).unwrap();
    let cached = fs::metadata(fx.store.blob_path(layer)).unwrap();
    assert_eq!(exported.ino(), cached.ino());
    assert_eq!(exported.mode() & 0o777, 0o644);
    assert_eq!(
        fs::metadata(dir.join("index.json")).unwrap().mode() & 0o777,
        0o644
    );

    // A second tag adds an entry; the same tag again replaces its entry; no temp files.
    let again = fx.export_to(&format!("oci:{d}:v2")).unwrap();
    assert_eq!(again.blobs_present, 4, "{again:?}");
    fx.export_to(&format!("oci:{d}:v1")).unwrap();
    let names = tags(&dir);
    assert_eq!(names, ["v2", "v1"]);
    assert_eq!(listing(&dir), ["blobs", "index.json", "oci-layout"]);
    assert!(
        listing(&dir.join("blobs/sha256"))
            .iter()
            .all(|n| !n.starts_with('.'))
    );

    // skopeo copies it into a fresh layout without changing the manifest.
    let fresh = fx.path("fresh").display().to_string();
    run(skopeo().args([
        "copy",
        "--quiet",
        &format!("oci:{d}:v2"),
        &format!("oci:{fresh}:x"),
    ]));
    assert_eq!(raw(&format!("oci:{fresh}:x")), fx.image.bytes);
}

#[test]
fn oci_dir_skopeo_writes_then_we_add_a_tag() {
    // A layout made by skopeo is a layout we update, keeping skopeo's entry.
    let fx = Fixture::new(MediaFamily::Oci);
    let first = fx.path("first").display().to_string();
    fx.export_to(&format!("oci:{first}:a")).unwrap();
    let theirs = fx.path("theirs").display().to_string();
    run(skopeo().args([
        "copy",
        "--quiet",
        &format!("oci:{first}:a"),
        &format!("oci:{theirs}:skopeo"),
    ]));
    fx.export_to(&format!("oci:{theirs}:ours")).unwrap();
    assert_eq!(raw(&format!("oci:{theirs}:skopeo")), fx.image.bytes);
    assert_eq!(raw(&format!("oci:{theirs}:ours")), fx.image.bytes);
}

#[test]
fn docker_family_image_is_converted_for_oci_layouts() {
    // Layout readers only see OCI manifests: a Docker manifest is rewritten with
    // OCI media types (as skopeo copy does), its blobs unchanged.
    let fx = Fixture::new(MediaFamily::Docker);
    let d = fx.path("layout").display().to_string();
    let file = fx.path("img.tar").display().to_string();
    for (target, r) in [
        (format!("oci:{d}:latest"), format!("oci:{d}:latest")),
        (
            format!("oci-archive:{file}:latest"),
            format!("oci-archive:{file}:latest"),
        ),
    ] {
        let report = fx.export_to(&target).unwrap();
        assert!(report.converted_to_oci);
        assert_ne!(report.manifest_digest, fx.image.digest);
        let written = raw(&r);
        assert_eq!(
            ocibench::oci::digest::Digest::of(&written),
            report.manifest_digest
        );
        let m: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(
            m["config"]["digest"],
            fx.image.manifest.config.digest.to_string()
        );
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(inspect(&r)["Layers"], serde_json::json!(fx.layer_digests()));
        assert_eq!(
            run(skopeo().args(["inspect", "--config", "--raw", &r])).stdout,
            fx.config
        );
    }
    // A docker-archive keeps the image as it is.
    let report = fx
        .export_to(&format!("docker-archive:{}", fx.path("d.tar").display()))
        .unwrap();
    assert!(!report.converted_to_oci);
    assert_eq!(report.manifest_digest, fx.image.digest);
}

#[test]
fn oci_archive_is_read_by_skopeo() {
    let fx = Fixture::new(MediaFamily::Oci);
    let file = fx.path("img.tar").display().to_string();
    let report = fx
        .export_to(&format!("oci-archive:{file}:localhost/app:1"))
        .unwrap();
    assert_eq!(report.bytes_written, fs::metadata(&file).unwrap().len());
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
    let r = format!("oci-archive:{file}:localhost/app:1");
    assert_eq!(raw(&r), fx.image.bytes);
    let info = inspect(&r);
    assert_eq!(info["Digest"], fx.image.digest.to_string());
    assert_eq!(info["Layers"], serde_json::json!(fx.layer_digests()));
    // Untagged lookup works too: the archive holds one image.
    assert_eq!(raw(&format!("oci-archive:{file}")), fx.image.bytes);

    let fresh = fx.path("fresh").display().to_string();
    run(skopeo().args(["copy", "--quiet", &r, &format!("oci:{fresh}:x")]));
    assert_eq!(raw(&format!("oci:{fresh}:x")), fx.image.bytes);
}

#[test]
fn docker_archive_is_read_by_skopeo() {
    let fx = Fixture::new(MediaFamily::Oci);
    let file = fx.path("docker.tar").display().to_string();
    fx.export_to(&format!("docker-archive:{file}:localhost/app:1"))
        .unwrap();
    let r = format!("docker-archive:{file}");
    let info = inspect(&r);
    let diff_ids: Vec<String> = fx.diff_ids.iter().map(ToString::to_string).collect();
    assert_eq!(info["Layers"], serde_json::json!(diff_ids), "{info}");
    assert_eq!(
        run(skopeo().args(["inspect", "--config", "--raw", &r])).stdout,
        fx.config,
        "the config is the stored config, byte for byte"
    );

    // The archive's manifest.json, as docker save writes it.
    let manifest = archive_file(&file, "manifest.json");
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let config_hex = fx.image.manifest.config.digest.hex().to_string();
    assert_eq!(m[0]["Config"], format!("{config_hex}.json"));
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["localhost/app:1"]));
    let layer_paths: Vec<String> = fx
        .diff_ids
        .iter()
        .map(|d| format!("{}/layer.tar", d.hex()))
        .collect();
    assert_eq!(m[0]["Layers"], serde_json::json!(layer_paths));

    let fresh = fx.path("fresh").display().to_string();
    run(skopeo().args(["copy", "--quiet", &r, &format!("oci:{fresh}:x")]));
    let copied = inspect(&format!("oci:{fresh}:x"));
    assert_eq!(copied["Layers"].as_array().unwrap().len(), 2);
    // skopeo re-serializes a config converting Docker to OCI; the content stays.
    let config: Value = serde_json::from_slice(
        &run(skopeo().args(["inspect", "--config", "--raw", &format!("oci:{fresh}:x")])).stdout,
    )
    .unwrap();
    let ours: Value = serde_json::from_slice(&fx.config).unwrap();
    assert_eq!(config["config"]["Cmd"], ours["config"]["Cmd"]);
    assert_eq!(config["rootfs"], ours["rootfs"]);
}

/// The bytes of `name` inside the tar `file`.
fn archive_file(file: &str, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(fs::File::open(file).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {file}");
}

#[test]
fn archives_are_deterministic() {
    let fx = Fixture::new(MediaFamily::Oci);
    for (transport, name) in [
        ("oci-archive", ":app"),
        ("docker-archive", ":localhost/app:1"),
    ] {
        let a = fx.path(&format!("{transport}-a.tar"));
        let b = fx.path(&format!("{transport}-b.tar"));
        fx.export_to(&format!("{transport}:{}{name}", a.display()))
            .unwrap();
        fx.export_to(&format!("{transport}:{}{name}", b.display()))
            .unwrap();
        // Overwriting an existing archive gives the same bytes too.
        fx.export_to(&format!("{transport}:{}{name}", b.display()))
            .unwrap();
        let (ba, bb) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert!(ba == bb, "{transport}: two exports differ");

        // Sorted entries, mtime 0, root-owned, no names.
        let mut ar = tar::Archive::new(&ba[..]);
        let mut paths = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some(""));
            paths.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "{transport}");
    }
    let names = listing(fx.dir.path());
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn docker_archive_without_layer_records_is_the_same() {
    // Layer records are a cache: without them the sizes are measured (and recorded).
    let fx = Fixture::new(MediaFamily::Oci);
    let a = fx.path("with.tar");
    fx.export_to(&format!("docker-archive:{}", a.display()))
        .unwrap();
    let records = fx.store.root().join("ocibench/layers");
    fs::remove_dir_all(&records).unwrap();
    fs::create_dir(&records).unwrap();
    let b = fx.path("without.tar");
    fx.export_to(&format!("docker-archive:{}", b.display()))
        .unwrap();
    assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap());
    let layer = &fx.image.manifest.layers[0].digest;
    assert_eq!(fx.store.layer_meta(layer).unwrap().diff_id, fx.diff_ids[0]);
}

#[test]
fn refuses_a_directory_that_is_not_a_layout() {
    let fx = Fixture::new(MediaFamily::Oci);
    let dir = fx.path("stuff");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    let err = fx.export_to(&format!("oci:{}", dir.display())).unwrap_err();
    assert!(matches!(err, ExportError::NotALayout(_)), "{err}");
    assert!(err.to_string().contains("stuff"), "{err}");
    assert_eq!(listing(&dir), ["notes.txt"]);

    // An empty directory becomes a layout.
    let empty = fx.path("empty");
    fs::create_dir(&empty).unwrap();
    fx.export_to(&format!("oci:{}", empty.display())).unwrap();
    assert_eq!(listing(&empty), ["blobs", "index.json", "oci-layout"]);

    // A file is not a layout; a directory is not an archive.
    let err = fx
        .export_to(&format!("oci:{}", dir.join("notes.txt").display()))
        .unwrap_err();
    assert!(matches!(err, ExportError::NotADirectory(_)), "{err}");
    let err = fx
        .export_to(&format!("oci-archive:{}", dir.display()))
        .unwrap_err();
    assert!(matches!(err, ExportError::IsADirectory(_)), "{err}");
}

#[test]
fn missing_parent_is_named() {
    let fx = Fixture::new(MediaFamily::Oci);
    for t in ["oci", "oci-archive", "docker-archive"] {
        let p = fx.path("no/such/dir/out");
        let err = fx.export_to(&format!("{t}:{}", p.display())).unwrap_err();
        assert!(
            matches!(err, ExportError::ParentMissing { .. }),
            "{t}: {err}"
        );
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
    assert!(!fx.path("no").exists());
}

#[test]
fn unwritable_destination_leaves_nothing() {
    // Root ignores permission bits, so use a place nobody can create files in.
    let fx = Fixture::new(MediaFamily::Oci);
    for t in ["oci-archive", "docker-archive"] {
        let err = fx
            .export_to(&format!("{t}:/proc/ocibench-test.tar"))
            .unwrap_err();
        assert!(matches!(err, ExportError::Write { .. }), "{t}: {err}");
        assert!(err.to_string().contains("/proc/ocibench-test.tar"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
    let err = fx.export_to("oci:/proc/ocibench-test").unwrap_err();
    assert!(matches!(err, ExportError::Write { .. }), "{err}");
    assert!(!std::path::Path::new("/proc/ocibench-test.tar").exists());
}

#[test]
fn missing_blob_leaves_no_file_and_keeps_the_old_one() {
    let fx = Fixture::new(MediaFamily::Oci);
    let out = fx.path("out");
    fs::create_dir(&out).unwrap();
    let existing = out.join("old.tar");
    fs::write(&existing, "previous archive").unwrap();
    let layer = fx.image.manifest.layers[1].digest.clone();
    fs::remove_file(fx.store.blob_path(&layer)).unwrap();

    for t in ["oci-archive", "docker-archive"] {
        for file in ["old.tar", "new.tar"] {
            let p = out.join(file);
            let err = fx.export_to(&format!("{t}:{}", p.display())).unwrap_err();
            assert!(
                matches!(&err, ExportError::BlobMissing { digest, .. } if digest == &layer),
                "{t}: {err}"
            );
            assert!(err.to_string().contains(layer.hex()), "{err}");
        }
    }
    let layout = out.join("layout");
    let err = fx
        .export_to(&format!("oci:{}:x", layout.display()))
        .unwrap_err();
    assert!(matches!(err, ExportError::BlobMissing { .. }), "{err}");
    assert!(!layout.exists(), "nothing written for an incomplete image");
    assert_eq!(fs::read(&existing).unwrap(), b"previous archive");
    assert_eq!(listing(&out), ["old.tar"]);
}

#[test]
fn corrupt_blob_fails_midway_and_leaves_nothing() {
    // Same size, different bytes: only noticed while streaming.
    let fx = Fixture::new(MediaFamily::Oci);
    let layer = fx.image.manifest.layers[0].digest.clone();
    let path = fx.store.blob_path(&layer);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::remove_file(&path).unwrap(); // the blob may be a hard link elsewhere
    fs::write(&path, &bytes).unwrap();
    let out = fx.path("out");
    fs::create_dir(&out).unwrap();
    for t in ["oci-archive", "docker-archive"] {
        let p = out.join(format!("{t}.tar"));
        let err = fx.export_to(&format!("{t}:{}", p.display())).unwrap_err();
        assert!(
            matches!(
                err,
                ExportError::BlobCorrupt { .. } | ExportError::ReadBlob { .. }
            ),
            "{t}: {err}"
        );
    }
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));
}

#[test]
fn copies_when_the_cache_is_on_another_filesystem() {
    // /dev/shm is a tmpfs: hard links from it to the temp dir fail, so blobs are copied.
    let shm = std::path::Path::new("/dev/shm");
    assert!(shm.is_dir(), "/dev/shm is missing");
    let fx = Fixture::new(MediaFamily::Oci);
    let cache = tempfile::tempdir_in(shm).unwrap();
    let store = ocibench::oci::store::BlobStore::open(cache.path()).unwrap();
    let m = &fx.image.manifest;
    for d in m.layers.iter().chain([&m.config]) {
        store
            .put_bytes(&fs::read(fx.store.blob_path(&d.digest)).unwrap())
            .unwrap();
    }
    store.put_bytes(&fx.image.bytes).unwrap();
    let image = ExportImage::from_store(&store, &fx.image.digest, &fx.image.media_type).unwrap();
    let dir = fx.path("layout");
    let report = export(
        &store,
        &image,
        &dest(&format!("oci:{}:x", dir.display())),
        &NoProgress,
    )
    .unwrap();
    let same_fs =
        fs::metadata(cache.path()).unwrap().dev() == fs::metadata(fx.dir.path()).unwrap().dev();
    if same_fs {
        assert_eq!(report.blobs_linked, 3, "{report:?}");
    } else {
        assert_eq!(report.blobs_copied, 4, "{report:?}");
        assert!(report.bytes_written > 0);
    }
    assert_eq!(raw(&format!("oci:{}:x", dir.display())), fx.image.bytes);
    let blob = dir
        .join("blobs/sha256")
        .join(fx.image.manifest.layers[0].digest.hex());
    assert_eq!(fs::metadata(blob).unwrap().mode() & 0o777, 0o644);
}

#[test]
fn concurrent_exports_into_one_new_layout_keep_every_tag() {
    let fx = Fixture::new(MediaFamily::Oci);
    let dir = fx.path("shared");
    std::thread::scope(|s| {
        for i in 0..6 {
            let (fx, dir) = (&fx, &dir);
            s.spawn(move || {
                fx.export_to(&format!("oci:{}:t{i}", dir.display()))
                    .unwrap();
            });
        }
    });
    let mut names = tags(&dir);
    names.sort();
    assert_eq!(names, ["t0", "t1", "t2", "t3", "t4", "t5"]);
    assert_eq!(raw(&format!("oci:{}:t3", dir.display())), fx.image.bytes);

    // The cache's own index entry is a way in, too.
    let entry = ocibench::oci::store::IndexEntry::new(
        fx.image.media_type.clone(),
        fx.image.digest.clone(),
        fx.image.bytes.len() as u64,
    );
    let again = ExportImage::from_index_entry(&fx.store, &entry).unwrap();
    assert_eq!(again.bytes, fx.image.bytes);
}
