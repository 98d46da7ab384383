//! A cold start's pull: an image of ocibench's blob store, served by
//! `oci::serve::LocalRegistry` over plain HTTP on loopback, pulled by real podman
//! (`PodmanRunner::pull`, which counts the layers copied) and checked by skopeo as an
//! independent client; then started, and gone from podman's store once dropped.
//!
//! The image is unique to each test (a file naming the test in its base layer, a
//! label in its config): other tests put busybox images with the same layers into
//! podman's store at the same time, and a shared layer would be "already present".

use std::process::Command;
use std::time::Duration;

use crate::support::podman::unique_name;
use crate::support::rootfs::static_busybox;
use crate::support::store_fixture::{APP_PAGE, Item, gzip, layer_tar};
use crate::support::tools::{require, run_stdout, skopeo};
use ocibench::oci::digest::Digest;
use ocibench::oci::image_config::{AddedLayer, ConfigEdit, edit_config, scratch_config};
use ocibench::oci::manifest::{Descriptor, ImageManifest, MediaFamily, Platform};
use ocibench::oci::serve::{LocalRegistry, ServeOptions, ServedImage};
use ocibench::oci::store::BlobStore;
use ocibench::runner::{PodmanRunner, RunnerError, RunnerOptions, StartOptions};

/// A two-layer busybox httpd image (serving `APP_PAGE` on 8080) in a fresh store.
struct StoredImage {
    _dir: tempfile::TempDir,
    store: BlobStore,
    served: ServedImage,
    config: Digest,
}

fn stored_image(what: &str) -> StoredImage {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let name = unique_name(what);
    let mut base = vec![
        Item::Dir("bin/".into()),
        Item::File(
            "bin/busybox".into(),
            0o755,
            std::fs::read(static_busybox()).unwrap(),
        ),
        Item::Symlink("bin/httpd".into(), "busybox".into()),
        Item::Symlink("bin/sh".into(), "busybox".into()),
        Item::Dir("etc/".into()),
    ];
    base.push(Item::File(
        "etc/ocibench-test".into(),
        0o644,
        name.clone().into_bytes(),
    ));
    let app = vec![
        Item::Dir("www/".into()),
        Item::File("www/index.html".into(), 0o644, APP_PAGE.as_bytes().to_vec()),
    ];
    let family = MediaFamily::Oci;
    let mut layers = Vec::new();
    let mut added = Vec::new();
    for items in [base, app] {
        let tar = layer_tar(&items);
        let gz = gzip(&tar);
        let digest = store.put_bytes(&gz).unwrap();
        layers.push(Descriptor::new(
            family.layer_gzip(),
            digest,
            gz.len() as u64,
        ));
        added.push(AddedLayer {
            diff_id: Digest::of(&tar),
            created_by: "ocibench test layer".into(),
        });
    }
    let edit = ConfigEdit {
        cmd: Some(
            ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
                .map(String::from)
                .to_vec(),
        ),
        env: vec!["PATH=/bin".into()],
        expose: vec!["8080".into()],
        labels: vec![("ocibench.test".into(), name)],
        ..ConfigEdit::default()
    };
    let config = edit_config(
        &scratch_config(&Platform::new("linux", "amd64", None)),
        &edit,
        &added,
    )
    .unwrap();
    let config_digest = store.put_bytes(&config).unwrap();
    let manifest = ImageManifest::new(
        family,
        Descriptor::new(family.config(), config_digest.clone(), config.len() as u64),
        layers,
    );
    let digest = store.put_bytes(&manifest.to_bytes()).unwrap();
    StoredImage {
        _dir: dir,
        store,
        served: ServedImage {
            repository: format!("ocibench/cold/{what}"),
            manifest: digest,
            media_type: family.manifest().into(),
        },
        config: config_digest,
    }
}

fn runner() -> PodmanRunner {
    require("podman", "podman");
    require("runc", "runc");
    PodmanRunner::new(RunnerOptions::default()).expect("podman is usable")
}

fn image_exists(id: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", id])
        .status()
        .unwrap()
        .success()
}

/// Every name in podman's store that mentions `host` (the registry's address).
fn names_from(host: &str) -> Vec<String> {
    run_stdout(Command::new("podman").args(["images", "--all", "--format", "{{.Names}}"]))
        .split(|c: char| c.is_whitespace() || "[],".contains(c))
        .filter(|n| n.contains(host))
        .map(str::to_string)
        .collect()
}

#[test]
fn podman_pulls_a_served_image_runs_it_and_leaves_nothing() {
    let runner = runner();
    let image = stored_image("pull");
    let registry = LocalRegistry::start(
        &image.store,
        std::slice::from_ref(&image.served),
        ServeOptions::default(),
    )
    .unwrap();
    let reference = registry.reference(&image.served);

    // An independent client agrees on what is served.
    let inspect: serde_json::Value = serde_json::from_str(&run_stdout(skopeo().args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])))
    .unwrap();
    assert_eq!(inspect["Digest"], image.served.manifest.to_string());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2, "{inspect}");

    let pulled = runner.pull(&reference, false).unwrap();
    assert_eq!(pulled.image.id, image.config.hex(), "{pulled:?}");
    assert!(!pulled.image.existed, "{pulled:?}");
    assert_eq!((pulled.layers_copied, pulled.layers_present), (2, 0));
    assert_eq!(pulled.image.name, reference);

    let container = runner
        .start(&pulled.image, 8080, &StartOptions::default())
        .unwrap();
    container.wait_ready("/", Duration::from_secs(60)).unwrap();
    container.remove().unwrap();

    // Pulled again while the first is alive: already there, nothing copied, kept on drop.
    let again = runner.pull(&reference, false).unwrap();
    assert!(again.image.existed, "{again:?}");
    assert_eq!(again.image.id, pulled.image.id);
    assert_eq!((again.layers_copied, again.layers_present), (0, 2));
    drop(again);
    assert!(image_exists(&pulled.image.id));

    let id = pulled.image.id.clone();
    drop(pulled);
    assert!(!image_exists(&id), "the pulled image outlived its drop");
    assert_eq!(names_from(registry.host()), Vec::<String>::new());
}

#[test]
fn plain_http_needs_tls_verify_false() {
    let runner = runner();
    let image = stored_image("tls");
    let registry = LocalRegistry::start(
        &image.store,
        std::slice::from_ref(&image.served),
        ServeOptions::default(),
    )
    .unwrap();
    let err = runner
        .pull(&registry.reference(&image.served), true)
        .unwrap_err();
    assert!(
        matches!(&err, RunnerError::Podman { stderr, .. }
            if stderr.contains("server gave HTTP response to HTTPS client")),
        "{err}"
    );
    assert!(!image_exists(image.config.hex()));
}
