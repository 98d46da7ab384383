//! Fixture images made by independent tools, pushed to a test registry.
//!
//! Nothing here uses ocibench's own code: root filesystems are plain directories
//! ([`super::rootfs`]), layouts are written by GNU `tar`, `gzip -n` and `sha256sum`
//! ([`super::layout`]), images reach the registry through `skopeo copy`, and the expected
//! values ([`FixtureImage`]) are read back from the files ([`super::expected`]).
//!
//! Layout dirs are cached under `$CARGO_TARGET_TMPDIR/ocibench-fixtures/`, keyed by a
//! hash of the fixture sources and of the busybox binary, published by an atomic rename,
//! so every test process (nextest runs one per test) reuses them. They are shared:
//! copy one before changing it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::layout::file_len;
use super::registry::Registry;
use super::tools::{self, run, sha256_bytes, sha256_file};

pub use super::expected::{FixtureImage, read_layout, read_registry};
pub use super::layout::{ConfigSpec, OciLayout, oci_layout_from_rootfs};
pub use super::media::*;
pub use super::rootfs::{
    INDEX_HTML, app_rootfs, busybox_rootfs, placeholder_rootfs, static_busybox,
};

/// The fixture images tests can push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// One busybox layer, OCI manifest (linux/amd64).
    Oci,
    /// The same image pushed as Docker schema 2 (`skopeo copy --format v2s2`): same
    /// layer blob, new config digest, new manifest digest and media types.
    DockerV2s2,
    /// Two layers: busybox, then an app layer (`/app/...`), OCI.
    TwoLayers,
    /// An OCI index: linux/amd64 (the busybox image of [`Variant::Oci`]), linux/arm64/v8
    /// (a small placeholder layer) and an attestation manifest (`unknown/unknown`).
    MultiPlatformIndex,
    /// A Docker manifest list of linux/amd64 and linux/arm64/v8 (no attestation:
    /// skopeo cannot convert an in-toto artifact to schema 2).
    DockerManifestList,
}

impl Variant {
    fn layout_kind(self) -> LayoutKind {
        match self {
            Variant::Oci | Variant::DockerV2s2 => LayoutKind::Busybox,
            Variant::TwoLayers => LayoutKind::TwoLayers,
            Variant::MultiPlatformIndex => LayoutKind::MultiPlatform,
            Variant::DockerManifestList => LayoutKind::MultiPlatformNoAttestation,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LayoutKind {
    Busybox,
    TwoLayers,
    MultiPlatform,
    MultiPlatformNoAttestation,
}

impl LayoutKind {
    fn name(self) -> &'static str {
        match self {
            LayoutKind::Busybox => "busybox",
            LayoutKind::TwoLayers => "two-layers",
            LayoutKind::MultiPlatform => "multi-platform",
            LayoutKind::MultiPlatformNoAttestation => "multi-platform-no-attestation",
        }
    }
}

/// The tag every fixture layout uses in its `index.json`.
pub const LAYOUT_TAG: &str = "fixture";

/// A built, shared (read-only) OCI layout and its expected values.
#[derive(Debug, Clone)]
pub struct FixtureLayout {
    pub dir: PathBuf,
    pub tag: String,
    pub image: FixtureImage,
}

impl FixtureLayout {
    /// `oci:DIR:TAG`, for skopeo or ocibench.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// The layout a variant is pushed from (built once per machine and source version,
/// read once per process).
pub fn fixture_layout(variant: Variant) -> &'static FixtureLayout {
    static LAYOUTS: OnceLock<Mutex<std::collections::HashMap<LayoutKind, &'static FixtureLayout>>> =
        OnceLock::new();
    let kind = variant.layout_kind();
    let map = LAYOUTS.get_or_init(Default::default);
    let mut map = map.lock().unwrap();
    if let Some(layout) = map.get(&kind) {
        return layout;
    }
    let dir = cached_layout_dir(kind);
    let image = read_layout(&dir, LAYOUT_TAG);
    let layout: &'static FixtureLayout = Box::leak(Box::new(FixtureLayout {
        dir,
        tag: LAYOUT_TAG.to_string(),
        image,
    }));
    map.insert(kind, layout);
    layout
}

/// Builds (or finds) the layout dir of `kind` under the cache root.
fn cached_layout_dir(kind: LayoutKind) -> PathBuf {
    let root = cache_root();
    let final_dir = root.join(format!("{}-{}", kind.name(), cache_key()));
    if final_dir.join("index.json").is_file() {
        return final_dir;
    }
    std::fs::create_dir_all(&root).expect("mkdir fixture cache");
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}-", kind.name()))
        .tempdir_in(&root)
        .expect("staging dir");
    let layout_dir = staging.path().join("layout");
    build_layout(kind, &layout_dir, staging.path());
    // Publish atomically; a concurrent process may have won, which is fine: same content.
    match std::fs::rename(&layout_dir, &final_dir) {
        Ok(()) => {}
        Err(_) if final_dir.join("index.json").is_file() => {}
        Err(e) => panic!("publish fixture layout {}: {e}", final_dir.display()),
    }
    prune_stale(&root, kind, &final_dir);
    final_dir
}

/// Removes layouts of `kind` built by older fixture code (other cache keys).
fn prune_stale(root: &Path, kind: LayoutKind, keep: &Path) {
    let prefix = format!("{}-", kind.name());
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = name.strip_prefix(&prefix).unwrap_or_default();
        // `<kind>-<12 hex>` only: "multi-platform-no-attestation-..." is another kind.
        if path != keep && key.len() == 12 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn cache_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibench-fixtures")
}

/// Changes whenever the code that writes layouts or the busybox binary does.
fn cache_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let busybox = sha256_file(&static_busybox());
        let sources = [
            include_str!("fixtures.rs"),
            include_str!("layout.rs"),
            include_str!("rootfs.rs"),
        ];
        let key = sha256_bytes(format!("{}\n{busybox}", sources.concat()).as_bytes());
        key[7..19].to_string()
    })
}

fn build_layout(kind: LayoutKind, layout_dir: &Path, scratch: &Path) {
    let rootfs = |name: &str, fill: &dyn Fn(&Path)| -> PathBuf {
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir rootfs");
        fill(&dir);
        dir
    };
    let mut layout = OciLayout::create(layout_dir);
    let busybox = rootfs("busybox", &busybox_rootfs);
    let base = layout.add_layer(&busybox);
    let top = match kind {
        LayoutKind::Busybox => layout.add_image(&ConfigSpec::default(), &[base]),
        LayoutKind::TwoLayers => {
            let app = layout.add_layer(&rootfs("app", &app_rootfs));
            layout.add_image(&ConfigSpec::default(), &[base, app])
        }
        LayoutKind::MultiPlatform | LayoutKind::MultiPlatformNoAttestation => {
            let amd64 = layout.add_image(&ConfigSpec::default(), &[base]);
            let arm64_layer = layout.add_layer(&rootfs("arm64", &|d| {
                placeholder_rootfs(d, "linux/arm64/v8")
            }));
            let arm64_spec = ConfigSpec {
                architecture: "arm64".into(),
                variant: Some("v8".into()),
                ..ConfigSpec::default()
            };
            let arm64 = layout.add_image(&arm64_spec, &[arm64_layer]);
            let mut entries = vec![amd64.clone(), arm64];
            if kind == LayoutKind::MultiPlatform {
                entries.push(layout.add_attestation(&amd64));
            }
            layout.add_index(&entries)
        }
    };
    layout.tag(LAYOUT_TAG, &top);
}

/// Pushes a fixture variant to `registry` as `repo:tag` with `skopeo copy` and returns
/// the expected values of what the registry now serves. Take a [`Registry::mark`]
/// *after* this call when counting requests: it reads manifests over HTTP.
pub fn push_fixture(registry: &Registry, repo: &str, tag: &str, variant: Variant) -> FixtureImage {
    let layout = fixture_layout(variant);
    let mut cmd = tools::skopeo();
    cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    match variant {
        Variant::Oci | Variant::TwoLayers => {
            cmd.args(["--format", "oci", "--preserve-digests"]);
        }
        Variant::DockerV2s2 => {
            cmd.args(["--format", "v2s2"]);
        }
        Variant::MultiPlatformIndex => {
            cmd.args(["--all", "--preserve-digests"]);
        }
        Variant::DockerManifestList => {
            cmd.args(["--all", "--format", "v2s2"]);
        }
    }
    if let Some(creds) = registry.creds_arg() {
        cmd.arg("--dest-creds").arg(creds);
    }
    cmd.arg(layout.oci_ref())
        .arg(registry.docker_ref(&format!("{repo}:{tag}")));
    run(&mut cmd);
    let pushed = read_registry(registry, repo, tag);
    if matches!(
        variant,
        Variant::Oci | Variant::TwoLayers | Variant::MultiPlatformIndex
    ) {
        // Pushed unchanged: the registry serves exactly the layout's bytes.
        let mut expected = layout.image.clone();
        expected.reference = pushed.reference.clone();
        assert_eq!(
            pushed, expected,
            "skopeo changed the {variant:?} fixture on push"
        );
    }
    pushed
}

/// Pushes the OCI fixture to `registry` as `repo_tag` with `skopeo copy`, signed
/// in as `creds`: for token-auth registries, whose `Registry` holds no
/// credentials (so nothing is read back, as `push_fixture` does). Returns what
/// the registry now serves: the layout's image, unchanged (`--preserve-digests`).
pub fn push_fixture_as(registry: &Registry, repo_tag: &str, creds: &str) -> FixtureImage {
    let layout = fixture_layout(Variant::Oci);
    run(tools::skopeo()
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(["--dest-creds", creds])
        .args(["--format", "oci", "--preserve-digests"])
        .arg(layout.oci_ref())
        .arg(registry.docker_ref(repo_tag)));
    FixtureImage {
        reference: registry.reference(repo_tag),
        ..layout.image.clone()
    }
}

/// Copies a fixture variant's layout to any skopeo destination (`oci-archive:FILE`,
/// `docker-archive:FILE:REF`, `oci:DIR:TAG`, `dir:DIR`), e.g. to test ocibench's other
/// transports. Index variants are copied whole (`--all`) where the destination allows.
pub fn export_fixture(variant: Variant, dest: &str) {
    let layout = fixture_layout(variant);
    let mut cmd = tools::skopeo();
    cmd.args(["copy", "--quiet"]);
    let multi = matches!(
        variant,
        Variant::MultiPlatformIndex | Variant::DockerManifestList
    );
    if multi && !dest.starts_with("docker-archive:") {
        cmd.arg("--all");
    }
    if variant == Variant::DockerV2s2 || dest.starts_with("docker-archive:") {
        cmd.args(["--format", "v2s2"]);
    }
    run(cmd.arg(layout.oci_ref()).arg(dest));
}

/// Flips bytes in the middle of the registry's stored copy of blob `digest` (same
/// length), so a client that downloads it gets content that fails verification.
pub fn tamper_blob(registry: &Registry, digest: &str) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = registry.blob_data_path(digest);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {} (blob {digest}): {e}", path.display()));
    let len = file.metadata().expect("stat blob").len();
    assert!(len > 0, "blob {digest} is empty");
    let start = len / 2;
    let n = (len - start).min(16) as usize;
    let mut buf = vec![0u8; n];
    file.seek(SeekFrom::Start(start)).unwrap();
    file.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b ^= 0xff;
    }
    file.seek(SeekFrom::Start(start)).unwrap();
    file.write_all(&buf).unwrap();
    file.sync_all().unwrap();
    assert_eq!(file_len(&path), len, "tampering keeps the length");
}
