//! A fixture image made with ocibench's own code, for the tests of `export` (which
//! starts from ocibench's blob store): a busybox-static rootfs and an app layer (no
//! registry, no internet), put into a temp `BlobStore` with their layer records.
//! What `export` writes from it is judged by independent readers (skopeo, podman).

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use flate2::{Compression, GzBuilder};
use ocibench::oci::digest::Digest;
use ocibench::oci::image_config::{AddedLayer, ConfigEdit, edit_config, scratch_config};
use ocibench::oci::manifest::{Descriptor, ImageManifest, MediaFamily, Platform};
use ocibench::oci::publish::{Destination, ExportError, ExportImage, ExportReport, export};
use ocibench::oci::store::{BlobStore, LayerMeta};
use ocibench::progress::NoProgress;

use super::rootfs::static_busybox;

/// One entry of a fixture layer.
pub enum Item {
    Dir(String),
    File(String, u32, Vec<u8>),
    Symlink(String, String),
}

/// A deterministic layer tar (sorted as given, mtime 0, root-owned).
pub fn layer_tar(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match item {
            Item::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            Item::File(p, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Item::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// gzip with a fixed header (mtime 0), as the layer builder does.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(6));
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Stores the gzip layer `gz` made from `tar`, with its layer record; returns its
/// descriptor and diff_id.
fn put_gzip_layer(
    store: &BlobStore,
    family: MediaFamily,
    tar: &[u8],
    gz: &[u8],
) -> (Descriptor, Digest) {
    let digest = store.put_bytes(gz).unwrap();
    let diff_id = Digest::of(tar);
    store
        .put_layer_meta(
            &digest,
            &LayerMeta {
                diff_id: diff_id.clone(),
                uncompressed_bytes: tar.len() as u64,
            },
        )
        .unwrap();
    (
        Descriptor::new(family.layer_gzip(), digest, gz.len() as u64),
        diff_id,
    )
}

pub const BASE_PAGE: &str = "hello from the busybox base\n";
pub const APP_PAGE: &str = "hello from the ocibench app layer\n";

/// The fixture's two layers, stored: a busybox rootfs (with `www/index.html`
/// saying `BASE_PAGE`) and an app layer replacing the page with `APP_PAGE`.
pub fn busybox_layers(store: &BlobStore, family: MediaFamily) -> [(Descriptor, Digest); 2] {
    // Built and compressed once per test binary (gzip is slow in debug builds).
    static LAYERS: std::sync::OnceLock<[(Vec<u8>, Vec<u8>); 2]> = std::sync::OnceLock::new();
    let [(base_tar, base_gz), (app_tar, app_gz)] = LAYERS.get_or_init(|| {
        let [base, app] = busybox_layer_tars();
        let (base_gz, app_gz) = (gzip(&base), gzip(&app));
        [(base, base_gz), (app, app_gz)]
    });
    [
        put_gzip_layer(store, family, base_tar, base_gz),
        put_gzip_layer(store, family, app_tar, app_gz),
    ]
}

fn busybox_layer_tars() -> [Vec<u8>; 2] {
    let busybox = fs::read(static_busybox()).unwrap();
    let mut base_items = vec![
        Item::Dir("bin/".into()),
        Item::File("bin/busybox".into(), 0o755, busybox),
    ];
    for applet in ["cat", "httpd", "ls", "sh", "true", "wget"] {
        base_items.push(Item::Symlink(format!("bin/{applet}"), "busybox".into()));
    }
    base_items.push(Item::Dir("www/".into()));
    base_items.push(Item::File(
        "www/index.html".into(),
        0o644,
        BASE_PAGE.as_bytes().to_vec(),
    ));
    let base_tar = layer_tar(&base_items);
    let app_tar = layer_tar(&[
        Item::Dir("www/".into()),
        Item::File("www/index.html".into(), 0o644, APP_PAGE.as_bytes().to_vec()),
    ]);
    [base_tar, app_tar]
}

/// A two-layer image in a fresh store: a busybox rootfs (with `www/index.html`
/// saying `BASE_PAGE`) and an app layer replacing the page with `APP_PAGE`;
/// the config runs busybox httpd on 8080.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: BlobStore,
    pub image: ExportImage,
    pub config: Vec<u8>,
    pub diff_ids: Vec<Digest>,
}

impl Fixture {
    pub fn new(family: MediaFamily) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("cache")).unwrap();
        let [(base, base_diff), (app, app_diff)] = busybox_layers(&store, family);
        let scratch = scratch_config(&Platform::new("linux", "amd64", None));
        let edit = ConfigEdit {
            cmd: Some(
                ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
                    .map(String::from)
                    .to_vec(),
            ),
            env: vec!["PATH=/bin".into()],
            expose: vec!["8080".into()],
            labels: vec![(
                "org.opencontainers.image.title".into(),
                "ocibench fixture".into(),
            )],
            ..ConfigEdit::default()
        };
        let layers = [
            AddedLayer {
                diff_id: base_diff.clone(),
                created_by: "ocibench: COPY busybox rootfs /".into(),
            },
            AddedLayer {
                diff_id: app_diff.clone(),
                created_by: "ocibench: COPY www /www".into(),
            },
        ];
        let config = edit_config(&scratch, &edit, &layers).unwrap();
        let config_digest = store.put_bytes(&config).unwrap();
        let manifest = ImageManifest::new(
            family,
            Descriptor::new(family.config(), config_digest, config.len() as u64),
            vec![base, app],
        );
        let bytes = manifest.to_bytes();
        let digest = store.put_bytes(&bytes).unwrap();
        let image = ExportImage::from_store(&store, &digest, family.manifest()).unwrap();
        Fixture {
            dir,
            store,
            image,
            config,
            diff_ids: vec![base_diff, app_diff],
        }
    }

    /// Exports the fixture's image to `dest` (skopeo's transport syntax).
    pub fn export_to(&self, dest: &str) -> Result<ExportReport, ExportError> {
        let dest = Destination::parse(dest).unwrap();
        export(&self.store, &self.image, &dest, &NoProgress)
    }

    /// A path inside this fixture's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn layer_digests(&self) -> Vec<String> {
        self.image
            .manifest
            .layers
            .iter()
            .map(|d| d.digest.to_string())
            .collect()
    }
}
