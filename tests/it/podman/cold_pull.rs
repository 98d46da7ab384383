//! A cold start's pull: an image of ocibench's blob store, served by
//! `oci::serve::LocalRegistry` over plain HTTP on loopback, pulled by real podman
//! (`PodmanRunner::pull`, which counts the layers copied) and checked by skopeo as an
//! independent client; then started, and gone from podman's store once dropped.
//!
//! Every layer is unique to its test (a file with a unique tag in each): other tests
//! put busybox images into podman's store at the same time, and a layer they share
//! would be "already present".

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

/// A store with the test's images.
struct Images {
    _dir: tempfile::TempDir,
    store: BlobStore,
}

/// An image added to `Images`, and its config's digest (podman's image ID).
struct Image {
    served: ServedImage,
    config: Digest,
}

impl Images {
    fn new() -> Images {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        Images { _dir: dir, store }
    }

    /// A two-layer busybox httpd image (serving `APP_PAGE` on 8080) in repository
    /// `ocibench/cold/REPO`. Each layer holds a file with its tag: the same tag, the
    /// same layer.
    fn add(&self, repo: &str, base_tag: &str, app_tag: &str) -> Image {
        let base = vec![
            Item::Dir("bin/".into()),
            Item::File(
                "bin/busybox".into(),
                0o755,
                std::fs::read(static_busybox()).unwrap(),
            ),
            Item::Symlink("bin/httpd".into(), "busybox".into()),
            Item::Symlink("bin/sh".into(), "busybox".into()),
            Item::Dir("etc/".into()),
            Item::File("etc/ocibench-test".into(), 0o644, base_tag.into()),
        ];
        let app = vec![
            Item::Dir("www/".into()),
            Item::File("www/index.html".into(), 0o644, APP_PAGE.into()),
            Item::File("www/ocibench-test".into(), 0o644, app_tag.into()),
        ];
        let family = MediaFamily::Oci;
        let mut layers = Vec::new();
        let mut added = Vec::new();
        for items in [base, app] {
            let tar = layer_tar(&items);
            let gz = gzip(&tar);
            let digest = self.store.put_bytes(&gz).unwrap();
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
            labels: vec![("ocibench.test".into(), format!("{base_tag} {app_tag}"))],
            ..ConfigEdit::default()
        };
        let config = edit_config(
            &scratch_config(&Platform::new("linux", "amd64", None)),
            &edit,
            &added,
        )
        .unwrap();
        let config_digest = self.store.put_bytes(&config).unwrap();
        let manifest = ImageManifest::new(
            family,
            Descriptor::new(family.config(), config_digest.clone(), config.len() as u64),
            layers,
        );
        let digest = self.store.put_bytes(&manifest.to_bytes()).unwrap();
        Image {
            served: ServedImage {
                repository: format!("ocibench/cold/{repo}"),
                manifest: digest,
                media_type: family.manifest().into(),
            },
            config: config_digest,
        }
    }

    fn serve(&self, images: &[&Image]) -> LocalRegistry {
        let served: Vec<ServedImage> = images.iter().map(|i| i.served.clone()).collect();
        LocalRegistry::start(&self.store, &served, ServeOptions::default()).unwrap()
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
    let images = Images::new();
    let tag = unique_name("pull");
    let image = images.add("pull", &tag, &tag);
    // The same image under a second name, as compare serves identical candidates.
    let twin = Image {
        served: ServedImage {
            repository: "ocibench/cold/pull-twin".into(),
            ..image.served.clone()
        },
        config: image.config.clone(),
    };
    let registry = images.serve(&[&image, &twin]);
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

    // Pulled under a new name while podman has it under the first: on drop only
    // the new name goes (no name of this registry may outlive the pulls).
    let renamed = runner
        .pull(&registry.reference(&twin.served), false)
        .unwrap();
    assert!(renamed.image.existed, "{renamed:?}");
    drop(renamed);
    assert!(image_exists(&pulled.image.id));
    let names = names_from(registry.host());
    assert!(!names.iter().any(|n| n.contains("pull-twin")), "{names:?}");

    let id = pulled.image.id.clone();
    drop(pulled);
    assert!(!image_exists(&id), "the pulled image outlived its drop");
    assert_eq!(names_from(registry.host()), Vec::<String>::new());
}

#[test]
fn plain_http_needs_tls_verify_false() {
    let runner = runner();
    let images = Images::new();
    let tag = unique_name("tls");
    let image = images.add("tls", &tag, &tag);
    let registry = images.serve(&[&image]);
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

#[test]
fn a_layer_podman_already_has_is_not_copied() {
    let runner = runner();
    let images = Images::new();
    let (base, app_a, app_b) = (
        unique_name("base"),
        unique_name("app-a"),
        unique_name("app-b"),
    );
    let a = images.add("shared-a", &base, &app_a);
    let b = images.add("shared-b", &base, &app_b);
    let registry = images.serve(&[&a, &b]);

    let pulled_a = runner.pull(&registry.reference(&a.served), false).unwrap();
    assert_eq!((pulled_a.layers_copied, pulled_a.layers_present), (2, 0));
    // The base layer is in podman's storage while `pulled_a` lives.
    let pulled_b = runner.pull(&registry.reference(&b.served), false).unwrap();
    assert!(!pulled_b.image.existed);
    assert_eq!(pulled_b.image.id, b.config.hex());
    assert_eq!((pulled_b.layers_copied, pulled_b.layers_present), (1, 1));
    drop((pulled_a, pulled_b));
    assert!(!image_exists(a.config.hex()));
    assert!(!image_exists(b.config.hex()));
}
