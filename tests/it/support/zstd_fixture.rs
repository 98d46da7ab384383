//! zstd fixture images made by independent tools: Python's `tarfile` writes the
//! tars, the `zstd` CLI compresses them, `sha256sum` and `zstd -dc | wc -c` give
//! the expected diff_ids and sizes, and `skopeo copy --preserve-digests` pushes the
//! layout to a registry unchanged. Nothing here uses ocibench's code.
//!
//! Two layers: a busybox root as one zstd frame (`zstd -19`), and an app layer laid
//! out as zstd:chunked does it (podman's partial-pull format): several frames, then
//! the table of contents zstd-compressed inside a skippable frame, then a skippable
//! footer, with the `io.github.containers.zstd-chunked.*` annotations on the layer's
//! descriptor. (The TOC is a stand-in JSON document: what matters here is that the
//! frames decode to the tar and the annotations survive.)

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::layout::{ConfigSpec, OciLayout, to_json_bytes};
use super::media::{OCI_CONFIG, OCI_MANIFEST};
use super::rootfs::{app_rootfs, busybox_rootfs};
use super::tools::{command, run, run_stdout, run_with_stdin, sha256_bytes, sha256_file};

pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const CHUNKED_CHECKSUM: &str = "io.github.containers.zstd-chunked.manifest-checksum";
pub const CHUNKED_POSITION: &str = "io.github.containers.zstd-chunked.manifest-position";
pub const TAG: &str = "zstd";

/// One zstd layer and what independent tools say of it.
#[derive(Debug, Clone)]
pub struct ZstdLayer {
    pub digest: String,
    pub size: u64,
    /// `zstd -dc BLOB | sha256sum`.
    pub diff_id: String,
    /// `zstd -dc BLOB | wc -c`.
    pub uncompressed_bytes: u64,
    pub annotations: Option<Value>,
}

/// A written layout holding one zstd image, tagged [`TAG`].
#[derive(Debug)]
pub struct ZstdFixture {
    pub dir: PathBuf,
    pub layers: Vec<ZstdLayer>,
    pub manifest_digest: String,
}

impl ZstdFixture {
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{TAG}", self.dir.display())
    }

    /// Pushes the layout unchanged (`--preserve-digests`) as `repo:tag`; returns the
    /// reference ocibench pulls.
    pub fn push(&self, registry: &super::Registry, repo_tag: &str) -> String {
        run(super::tools::skopeo()
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .arg(self.oci_ref())
            .arg(registry.docker_ref(repo_tag)));
        registry.reference(repo_tag)
    }
}

/// `python3 -c` making a tar of `root` (sorted, PAX format) at `out`.
fn python_tar(root: &Path, out: &Path) {
    let script = r#"
import os, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            p = os.path.join(d, name)
            t.add(p, arcname=os.path.relpath(p, root), recursive=False)
"#;
    run(command("python3", "python3")
        .args(["-c", script])
        .arg(root)
        .arg(out));
}

/// `zstd -q -LEVEL -c` of `bytes`.
fn zstd(bytes: &[u8], level: u32) -> Vec<u8> {
    run_with_stdin(
        command("zstd", "zstd").args(["-q", &format!("-{level}"), "-c"]),
        bytes,
    )
    .stdout
}

/// A skippable frame (RFC 8878 §3.1.2): magic 0x184D2A5?, little-endian length, data.
fn skippable(nibble: u8, data: &[u8]) -> Vec<u8> {
    let mut f = (0x184D_2A50u32 | u32::from(nibble & 0xf))
        .to_le_bytes()
        .to_vec();
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

/// The expected values of `blob`, as a user checks them with the zstd CLI.
fn measure(blob: &Path, annotations: Option<Value>) -> ZstdLayer {
    let out = run_stdout(
        std::process::Command::new("bash")
            .args([
                "-c",
                r#"set -o pipefail; zstd -dc -- "$1" | sha256sum; zstd -dc -- "$1" | wc -c"#,
                "unzstd",
            ])
            .arg(blob),
    );
    let mut lines = out.lines();
    let hex = lines.next().unwrap().split_whitespace().next().unwrap();
    ZstdLayer {
        digest: sha256_file(blob),
        size: std::fs::metadata(blob).unwrap().len(),
        diff_id: format!("sha256:{hex}"),
        uncompressed_bytes: lines.next().unwrap().trim().parse().unwrap(),
        annotations,
    }
}

/// Writes the two-layer zstd image into a new layout at `dir`. With `corrupt_app`,
/// the app layer's frames are damaged after compression (its digest is of the
/// damaged bytes, its diff_id of the real tar): a blob that downloads intact and
/// does not decode.
pub fn zstd_layout(dir: &Path, corrupt_app: bool) -> ZstdFixture {
    let mut layout = OciLayout::create(dir);
    let work = tempfile::tempdir().expect("temp dir");
    let (base_root, app_root) = (work.path().join("base"), work.path().join("app"));
    busybox_rootfs(&base_root);
    app_rootfs(&app_root);

    // Layer 1: one frame.
    let base_tar = work.path().join("base.tar");
    python_tar(&base_root, &base_tar);
    let base_blob = work.path().join("base.tar.zst");
    run(command("zstd", "zstd")
        .args(["-q", "-19", "-o"])
        .arg(&base_blob)
        .arg(&base_tar));
    let base = measure(&base_blob, None);

    // Layer 2: zstd:chunked's shape. Frames cut at a tar entry boundary (after the
    // first 512-byte header block and its data), then the TOC and footer.
    let app_tar = work.path().join("app.tar");
    python_tar(&app_root, &app_tar);
    let tar = std::fs::read(&app_tar).unwrap();
    let cut = 1536.min(tar.len());
    let mut blob = zstd(&tar[..cut], 3);
    let second = zstd(&tar[cut..], 3);
    // Inside the second data frame, past its header: the data is damaged, the
    // skippable frames (which no decoder reads) are not.
    let damage_at = blob.len() + second.len() / 2;
    blob.extend(second);
    let toc = br#"{"version":1,"entries":[{"type":"dir","name":"app/"}]}"#;
    let toc_frame = zstd(toc, 3);
    let toc_offset = blob.len() + 8;
    let toc_checksum = sha256_bytes(&toc_frame);
    blob.extend(skippable(0xb, &toc_frame));
    let mut footer = Vec::new();
    for n in [
        toc_offset as u64,
        toc_frame.len() as u64,
        toc.len() as u64,
        1,
    ] {
        footer.extend_from_slice(&n.to_le_bytes());
    }
    footer.extend_from_slice(b"GNUlInUxxx");
    blob.extend(skippable(0xb, &footer));
    if corrupt_app {
        for b in &mut blob[damage_at..damage_at + 4] {
            *b ^= 0x5a;
        }
    }
    let app_blob = work.path().join("app.tar.zst");
    std::fs::write(&app_blob, &blob).unwrap();
    let annotations = json!({
        CHUNKED_CHECKSUM: toc_checksum,
        CHUNKED_POSITION: format!("{toc_offset}:{}:{}:1", toc_frame.len(), toc.len()),
    });
    let mut app = if corrupt_app {
        // The real tar's values: what the config promises.
        ZstdLayer {
            digest: sha256_file(&app_blob),
            size: blob.len() as u64,
            diff_id: sha256_file(&app_tar),
            uncompressed_bytes: tar.len() as u64,
            annotations: None,
        }
    } else {
        measure(&app_blob, None)
    };
    app.annotations = Some(annotations);

    let layers = vec![base, app];
    let blobs = [&base_blob, &app_blob];
    for (l, path) in layers.iter().zip(blobs) {
        std::fs::copy(path, layout.blob_path(&l.digest)).unwrap();
    }
    let spec = ConfigSpec::default();
    let config = json!({
        "architecture": spec.architecture, "os": spec.os,
        "created": "1970-01-01T00:00:00Z",
        "config": {"Cmd": spec.cmd, "Env": spec.env, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    });
    let (config_digest, config_size) = layout.add_blob(&to_json_bytes(&config));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| {
            let mut d = json!({"mediaType": OCI_LAYER_ZSTD, "digest": l.digest, "size": l.size});
            if let Some(a) = &l.annotations {
                d["annotations"] = a.clone();
            }
            d
        }).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size) = layout.add_blob(&to_json_bytes(&manifest));
    layout.tag(
        TAG,
        &json!({"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size}),
    );
    ZstdFixture {
        dir: dir.to_path_buf(),
        layers,
        manifest_digest,
    }
}
