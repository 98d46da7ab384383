//! Writing OCI image layouts by hand: GNU `tar` (sorted, mtime 0, uid/gid 0) piped
//! through `gzip -n`, digests by `sha256sum`, JSON written with serde_json. Independent
//! of ocibench's own layer and manifest code, so it can judge it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::expected::{FixtureImage, FixtureLayer, read_layout};
use super::media::*;
use super::rootfs::HTTPD_PORT;
use super::tools::{self, run, sha256_bytes, sha256_file};

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

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

pub fn to_json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialize JSON")
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .len()
}
