//! Fixture images made by independent tools, and the values tests expect of them.
//!
//! Nothing here uses ocibench's own code: root filesystems are plain directories,
//! layers are GNU `tar` (sorted, mtime 0, uid/gid 0) piped through `gzip -n`, digests
//! come from `sha256sum`, uncompressed sizes from `gzip -dc | wc -c`, and images reach
//! the registry through `skopeo copy`. The expected values ([`FixtureImage`]) are read
//! back from the files (the OCI layout, or the registry's own storage after a push), so
//! they can judge what ocibench reports.
//!
//! Layout dirs are cached under `$CARGO_TARGET_TMPDIR/ocibench-fixtures/`, keyed by a
//! hash of this source file and of the busybox binary, published by an atomic rename, so
//! every test process (nextest runs one per test) reuses them. They are shared:
//! copy one before changing it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::registry::Registry;
use super::tools::{self, run, sha256_bytes, sha256_file};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// `Accept` value naming all four manifest media types.
pub const ALL_MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The text `/www/index.html` of the busybox fixture serves.
pub const INDEX_HTML: &str = "<h1>ocibench fixture</h1>\n";
/// The port the busybox fixture's `httpd` listens on (its `Cmd`).
pub const HTTPD_PORT: u16 = 8080;

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
    pub const ALL: [Variant; 5] = [
        Variant::Oci,
        Variant::DockerV2s2,
        Variant::TwoLayers,
        Variant::MultiPlatformIndex,
        Variant::DockerManifestList,
    ];

    fn layout_kind(self) -> LayoutKind {
        match self {
            Variant::Oci | Variant::DockerV2s2 => LayoutKind::Busybox,
            Variant::TwoLayers => LayoutKind::TwoLayers,
            Variant::MultiPlatformIndex => LayoutKind::MultiPlatform,
            Variant::DockerManifestList => LayoutKind::MultiPlatformNoAttestation,
        }
    }
}

/// One layer as tests expect ocibench to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureLayer {
    pub digest: String,
    pub diff_id: String,
    pub media_type: String,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

/// An image (one platform's manifest) with the values tests compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureImage {
    /// `127.0.0.1:PORT/repo:tag` after [`push_fixture`]; `oci:DIR:TAG` for a layout.
    pub reference: String,
    /// `os/architecture[/variant]` from the config.
    pub platform: String,
    pub media_type: String,
    pub manifest_digest: String,
    /// The manifest exactly as stored/served.
    pub manifest: Vec<u8>,
    pub manifest_bytes: u64,
    pub config_digest: String,
    /// The config blob exactly as stored/served.
    pub config: Vec<u8>,
    pub config_bytes: u64,
    pub layers: Vec<FixtureLayer>,
    /// For index/list variants: the index (this image is its linux/amd64 entry).
    pub index: Option<FixtureIndex>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureIndex {
    pub media_type: String,
    pub digest: String,
    pub raw: Vec<u8>,
    pub bytes: u64,
    /// The runnable images, in index order (amd64 first).
    pub images: Vec<FixtureImage>,
    /// The attestation entry (`unknown/unknown`), if any.
    pub attestation: Option<FixtureAttestation>,
}

/// An attestation manifest: an artifact whose one layer is an in-toto JSON blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureAttestation {
    pub manifest_digest: String,
    pub blob_digest: String,
}

impl FixtureImage {
    /// Sum of the layers' blob sizes.
    pub fn compressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed_bytes).sum()
    }

    /// Sum of the layers' uncompressed tar lengths.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_bytes).sum()
    }

    /// The digest a tag resolves to: the index's for index variants, else the manifest's.
    pub fn top_digest(&self) -> &str {
        self.index
            .as_ref()
            .map_or(&self.manifest_digest, |i| &i.digest)
    }

    pub fn manifest_json(&self) -> Value {
        serde_json::from_slice(&self.manifest).expect("fixture manifest is JSON")
    }

    pub fn config_json(&self) -> Value {
        serde_json::from_slice(&self.config).expect("fixture config is JSON")
    }

    /// The image one platform of an index variant (`"linux/arm64/v8"`), or `self`.
    pub fn platform_image(&self, platform: &str) -> &FixtureImage {
        if self.platform == platform {
            return self;
        }
        self.index
            .iter()
            .flat_map(|i| &i.images)
            .find(|i| i.platform == platform)
            .unwrap_or_else(|| panic!("fixture has no platform {platform}"))
    }

    /// The size object of DESIGN.md (`size --json`) with the expected values;
    /// `reference` is left out (callers know what they asked for).
    pub fn size_json(&self) -> Value {
        json!({
            "digest": self.manifest_digest,
            "media_type": self.media_type,
            "platform": self.platform,
            "manifest_bytes": self.manifest_bytes,
            "config_bytes": self.config_bytes,
            "compressed_bytes": self.compressed_bytes(),
            "uncompressed_bytes": self.uncompressed_bytes(),
            "layers": self.layers.iter().map(|l| json!({
                "digest": l.digest,
                "diff_id": l.diff_id,
                "media_type": l.media_type,
                "compressed_bytes": l.compressed_bytes,
                "uncompressed_bytes": l.uncompressed_bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Root filesystems

/// Fills `dir` with a minimal busybox root: `/bin/busybox` (busybox-static) and applet
/// symlinks, `/www/index.html`, `/etc/passwd` and `/etc/group` with root, `/tmp`.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = static_busybox();
    let bin = dir.join("bin");
    for d in ["bin", "etc", "www", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(&busybox, bin.join("busybox")).expect("copy busybox");
    for applet in [
        "sh", "httpd", "cat", "echo", "ls", "env", "sleep", "true", "false", "mkdir", "rm", "id",
        "uname", "wget", "grep", "head", "ps",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink applet");
    }
    std::fs::write(dir.join("www/index.html"), INDEX_HTML).expect("write index.html");
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("write passwd");
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    set_modes(dir);
    set_mode(&dir.join("tmp"), 0o1777);
    set_mode(&bin.join("busybox"), 0o755);
}

/// Fills `dir` with a small application layer: `/app/hello.txt`, an executable
/// `/app/run.sh`, `/app/data/numbers.txt` (a few KiB) and a symlink `/app/current`.
pub fn app_rootfs(dir: &Path) {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("data")).expect("mkdir app");
    std::fs::write(app.join("hello.txt"), "hello from the app layer\n").expect("write");
    std::fs::write(
        app.join("run.sh"),
        "#!/bin/sh\nexec httpd -f -p 8080 -h /www\n",
    )
    .expect("write run.sh");
    let numbers: String = (0..2000).map(|i| format!("{i}\n")).collect();
    std::fs::write(app.join("data/numbers.txt"), numbers).expect("write numbers");
    std::os::unix::fs::symlink("hello.txt", app.join("current")).expect("symlink");
    set_modes(dir);
    set_mode(&app.join("run.sh"), 0o755);
}

/// A placeholder root for a foreign platform (never run): a text file where the
/// binary would be, so its layer differs from the amd64 one.
pub fn placeholder_rootfs(dir: &Path, platform: &str) {
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::write(
        dir.join("bin/busybox"),
        format!("placeholder for {platform}: this fixture layer is not meant to run\n"),
    )
    .expect("write placeholder");
    set_modes(dir);
}

/// The busybox-static binary; panics if only a dynamic busybox is installed.
fn static_busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    let bytes = std::fs::read(&path).unwrap_or_else(|_| {
        panic!("missing /bin/busybox: install the Debian package busybox-static (scripts/install-deps.sh does)")
    });
    assert!(
        is_static_elf(&bytes),
        "/bin/busybox is dynamically linked: install the Debian package busybox-static"
    );
    path
}

/// True for an ELF64 without a `PT_INTERP` program header (no dynamic loader).
fn is_static_elf(b: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}

/// Directories 0755 and regular files 0644 (umask-independent), recursively.
fn set_modes(dir: &Path) {
    set_mode(dir, 0o755);
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.is_dir() {
            set_modes(&path);
        } else if meta.is_file() {
            set_mode(&path, 0o644);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

// ---------------------------------------------------------------------------------------
// OCI layouts

/// What goes into an image config besides the layers.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub exposed_ports: Vec<String>,
}

impl Default for ConfigSpec {
    /// linux/amd64, `PATH=/bin`, `Cmd` the busybox httpd serving `/www` on 8080.
    fn default() -> Self {
        ConfigSpec {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"]
                .map(String::from)
                .to_vec(),
            env: vec!["PATH=/bin".into()],
            exposed_ports: vec![format!("{HTTPD_PORT}/tcp")],
        }
    }
}

impl ConfigSpec {
    fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": self.os});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

/// An OCI image layout directory being written.
#[derive(Debug)]
pub struct OciLayout {
    pub dir: PathBuf,
    tags: Vec<(String, Value)>,
}

impl OciLayout {
    /// Creates `dir/oci-layout` and `dir/blobs/sha256`.
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir layout");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
            tags: Vec::new(),
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }

    /// Stores `bytes` as a blob; returns `(digest, size)`.
    pub fn add_blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = sha256_bytes(bytes);
        std::fs::write(self.blob_path(&digest), bytes).expect("write blob");
        (digest, bytes.len() as u64)
    }

    /// Tars `rootfs` deterministically (GNU tar: `--sort=name --mtime=@0 --owner=0
    /// --group=0 --numeric-owner`), compresses with `gzip -n`, stores the blob.
    pub fn add_layer(&self, rootfs: &Path) -> FixtureLayer {
        let work = tempfile::tempdir_in(&self.dir).expect("temp dir in layout");
        let tar_path = work.path().join("layer.tar");
        let gz_path = work.path().join("layer.tar.gz");
        run(tools::command("tar", "tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .args(["--format=gnu", "-C"])
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar_path)
            .arg("."));
        let gz = std::fs::File::create(&gz_path).expect("create layer.tar.gz");
        run(tools::command("gzip", "gzip")
            .args(["-n", "-6", "-c"])
            .arg(&tar_path)
            .stdout(gz));
        let diff_id = sha256_file(&tar_path);
        let digest = sha256_file(&gz_path);
        let layer = FixtureLayer {
            uncompressed_bytes: file_len(&tar_path),
            compressed_bytes: file_len(&gz_path),
            digest,
            diff_id,
            media_type: OCI_LAYER_GZIP.into(),
        };
        std::fs::rename(&gz_path, self.blob_path(&layer.digest)).expect("store layer blob");
        layer
    }

    /// Writes a config and an OCI manifest for `layers`; returns the manifest's
    /// descriptor (with platform) for an index or a tag.
    pub fn add_image(&self, spec: &ConfigSpec, layers: &[FixtureLayer]) -> Value {
        let history: Vec<Value> = layers
            .iter()
            .map(|l| {
                json!({"created": "1970-01-01T00:00:00Z",
                       "created_by": format!("tar | gzip -n: layer {}", &l.diff_id[7..19])})
            })
            .collect();
        let mut config = json!({
            "architecture": spec.architecture,
            "os": spec.os,
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": spec.cmd, "Env": spec.env, "WorkingDir": "/"},
            "rootfs": {"type": "layers",
                       "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
            "history": history,
        });
        if let Some(v) = &spec.variant {
            config["variant"] = json!(v);
        }
        if !spec.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = spec
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config["config"]["ExposedPorts"] = Value::Object(ports);
        }
        let (config_digest, config_size) = self.add_blob(&to_json_bytes(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.compressed_bytes,
            })).collect::<Vec<_>>(),
        });
        let (digest, size) = self.add_blob(&to_json_bytes(&manifest));
        json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
               "platform": spec.platform()})
    }

    /// Writes a buildx-style attestation manifest for the image `subject` (a manifest
    /// descriptor); returns its index entry (`unknown/unknown`, annotated).
    pub fn add_attestation(&self, subject: &Value) -> Value {
        let subject_digest = subject["digest"].as_str().expect("subject digest");
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "fixture",
                         "digest": {"sha256": &subject_digest[7..]}}],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": "ocibench-fixture"},
        });
        let statement_bytes = to_json_bytes(&statement);
        let (blob_digest, blob_size) = self.add_blob(&statement_bytes);
        let diff_id = blob_digest.clone();
        let config = json!({"architecture": "unknown", "os": "unknown", "config": {},
                            "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
        let (config_digest, config_size) = self.add_blob(&to_json_bytes(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": IN_TOTO, "digest": blob_digest, "size": blob_size,
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
        });
        let (digest, size) = self.add_blob(&to_json_bytes(&manifest));
        json!({
            "mediaType": OCI_MANIFEST, "digest": digest, "size": size,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": subject_digest,
                "vnd.docker.reference.type": "attestation-manifest",
            },
        })
    }

    /// Writes an OCI index of `entries`; returns its descriptor.
    pub fn add_index(&self, entries: &[Value]) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        let (digest, size) = self.add_blob(&to_json_bytes(&index));
        json!({"mediaType": OCI_INDEX, "digest": digest, "size": size})
    }

    /// Names `descriptor` `tag` in `index.json` (written immediately).
    pub fn tag(&mut self, tag: &str, descriptor: &Value) {
        let mut d = descriptor.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.tags.push((tag.to_string(), d));
        let index = json!({
            "schemaVersion": 2,
            "manifests": self.tags.iter().map(|(_, d)| d).collect::<Vec<_>>(),
        });
        std::fs::write(self.dir.join("index.json"), to_json_bytes(&index)).expect("index.json");
    }
}

/// Builds a one-image OCI layout in `layout_dir` from root filesystems (one layer each),
/// tagged `tag`, and returns its expected values (read back from the files).
pub fn oci_layout_from_rootfs(
    layout_dir: &Path,
    tag: &str,
    rootfs: &[&Path],
    spec: &ConfigSpec,
) -> FixtureImage {
    let mut layout = OciLayout::create(layout_dir);
    let layers: Vec<FixtureLayer> = rootfs.iter().map(|r| layout.add_layer(r)).collect();
    let descriptor = layout.add_image(spec, &layers);
    layout.tag(tag, &descriptor);
    read_layout(layout_dir, tag)
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

fn to_json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialize JSON")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .len()
}

// ---------------------------------------------------------------------------------------
// Reading expected values back from blobs

/// Where an image's blobs can be read: an OCI layout or a registry's storage.
trait BlobSource {
    fn blob(&self, digest: &str) -> PathBuf;
}

struct LayoutBlobs<'a>(&'a Path);
impl BlobSource for LayoutBlobs<'_> {
    fn blob(&self, digest: &str) -> PathBuf {
        blob_path(self.0, digest)
    }
}

struct RegistryBlobs<'a>(&'a Registry);
impl BlobSource for RegistryBlobs<'_> {
    fn blob(&self, digest: &str) -> PathBuf {
        self.0.blob_data_path(digest)
    }
}

/// The expected values of the image (or index) tagged `tag` in an OCI layout.
pub fn read_layout(layout: &Path, tag: &str) -> FixtureImage {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}/index.json", layout.display()));
    let digest = entry["digest"].as_str().expect("digest");
    let raw = std::fs::read(blob_path(layout, digest)).expect("read top manifest");
    let mut image = read_any(&LayoutBlobs(layout), raw, &|d: &str| {
        std::fs::read(blob_path(layout, d)).unwrap_or_else(|e| panic!("read blob {d}: {e}"))
    });
    image.reference = format!("oci:{}:{tag}", layout.display());
    image
}

/// The expected values of `repo:reference` as the registry serves it: manifests by
/// HTTP, config and layer bytes from the registry's storage files (so reading them is
/// not logged as a blob download).
pub fn read_registry(registry: &Registry, repo: &str, reference: &str) -> FixtureImage {
    let fetch = |r: &str| -> Vec<u8> {
        let resp = registry.manifest(repo, r);
        let body = resp.body.clone();
        if let Some(d) = resp.header("docker-content-digest") {
            assert_eq!(
                sha256_bytes(&body),
                d,
                "registry's Docker-Content-Digest for {repo}:{r}"
            );
        }
        body
    };
    let raw = fetch(reference);
    let mut image = read_any(&RegistryBlobs(registry), raw, &fetch);
    image.reference = registry.reference(&format!("{repo}:{reference}"));
    image
}

/// Builds the expected values from a top-level manifest or index (`raw`).
fn read_any(
    blobs: &dyn BlobSource,
    raw: Vec<u8>,
    fetch_manifest: &dyn Fn(&str) -> Vec<u8>,
) -> FixtureImage {
    let json: Value = serde_json::from_slice(&raw).expect("manifest is JSON");
    let media_type = json["mediaType"].as_str().unwrap_or_default().to_string();
    if media_type != OCI_INDEX && media_type != DOCKER_LIST {
        return read_image(blobs, raw);
    }
    let mut images = Vec::new();
    let mut attestation = None;
    for entry in json["manifests"].as_array().expect("index manifests") {
        let digest = entry["digest"].as_str().expect("entry digest");
        let child = fetch_manifest(digest);
        assert_eq!(sha256_bytes(&child), digest, "index entry digest");
        assert_eq!(
            child.len() as u64,
            entry["size"].as_u64().unwrap(),
            "entry size"
        );
        if entry["platform"]["os"] == "unknown" {
            let m: Value = serde_json::from_slice(&child).expect("attestation JSON");
            attestation = Some(FixtureAttestation {
                manifest_digest: digest.to_string(),
                blob_digest: m["layers"][0]["digest"].as_str().unwrap().to_string(),
            });
        } else {
            images.push(read_image(blobs, child));
        }
    }
    let mut top = images
        .iter()
        .find(|i| i.platform == "linux/amd64")
        .expect("index has linux/amd64")
        .clone();
    top.index = Some(FixtureIndex {
        media_type,
        digest: sha256_bytes(&raw),
        bytes: raw.len() as u64,
        raw,
        images,
        attestation,
    });
    top
}

/// Layer facts keyed by blob digest: gunzipping is the slow part, and blobs are
/// content-addressed, so one computation per process is enough.
fn layer_facts(path: &Path, digest: &str) -> (String, u64) {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, (String, u64)>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(digest) {
        return hit.clone();
    }
    let facts = tools::gunzip_digest_and_len(path);
    cache
        .lock()
        .unwrap()
        .insert(digest.to_string(), facts.clone());
    facts
}

fn read_image(blobs: &dyn BlobSource, raw: Vec<u8>) -> FixtureImage {
    let manifest: Value = serde_json::from_slice(&raw).expect("manifest is JSON");
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config_path = blobs.blob(config_digest);
    let config = std::fs::read(&config_path)
        .unwrap_or_else(|e| panic!("read config {}: {e}", config_path.display()));
    assert_eq!(sha256_bytes(&config), config_digest, "config digest");
    let config_json: Value = serde_json::from_slice(&config).expect("config is JSON");
    let diff_ids = config_json["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids");
    let descs = manifest["layers"].as_array().expect("layers");
    assert_eq!(diff_ids.len(), descs.len(), "one diff_id per layer");
    let layers = descs
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let digest = d["digest"].as_str().expect("layer digest").to_string();
            let path = blobs.blob(&digest);
            let compressed_bytes = file_len(&path);
            assert_eq!(compressed_bytes, d["size"].as_u64().unwrap(), "layer size");
            assert_eq!(sha256_file(&path), digest, "layer blob digest");
            let (actual_diff_id, uncompressed_bytes) = layer_facts(&path, &digest);
            assert_eq!(
                actual_diff_id,
                diff_id.as_str().unwrap(),
                "diff_id of {digest}"
            );
            FixtureLayer {
                media_type: d["mediaType"].as_str().unwrap().to_string(),
                digest,
                diff_id: actual_diff_id,
                compressed_bytes,
                uncompressed_bytes,
            }
        })
        .collect();
    let mut platform = format!(
        "{}/{}",
        config_json["os"].as_str().unwrap_or_default(),
        config_json["architecture"].as_str().unwrap_or_default()
    );
    if let Some(v) = config_json["variant"].as_str() {
        platform = format!("{platform}/{v}");
    }
    FixtureImage {
        reference: String::new(),
        platform,
        media_type,
        manifest_digest: sha256_bytes(&raw),
        manifest_bytes: raw.len() as u64,
        manifest: raw,
        config_digest: config_digest.to_string(),
        config_bytes: config.len() as u64,
        config,
        layers,
        index: None,
    }
}

// ---------------------------------------------------------------------------------------
// Cached layouts per variant

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
    final_dir
}

fn cache_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ocibench-fixtures")
}

/// Changes whenever this file or the busybox binary does.
fn cache_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let busybox = sha256_file(&static_busybox());
        let key = sha256_bytes(format!("{}\n{busybox}", include_str!("fixtures.rs")).as_bytes());
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

// ---------------------------------------------------------------------------------------
// Pushing and damaging

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
