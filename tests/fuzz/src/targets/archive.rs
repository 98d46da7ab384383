//! `oci-archive:` and `docker-archive:` files, opened the way `pull`, `size` and
//! `run` open them (unpacked into a scratch folder, then read as an image source).
//!
//! The input is a tar whose header checksums are fixed before use, so that AFL's
//! mutations of names, types and link targets reach the reader instead of dying
//! at the checksum. Properties: nothing is written outside the scratch folder
//! (a canary beside it stays as it was), and every byte the source serves as a
//! manifest or blob is the content of a regular file inside the scratch folder:
//! a symlink in the archive must not make ocibench read, and so upload or cache,
//! a file of the machine such as `~/.docker/config.json`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ocibench::oci::digest::Digest;
use ocibench::oci::location::ImageLocation;
use ocibench::oci::manifest::{Descriptor, Manifest, Platform};
use ocibench::oci::registry::RegistryClient;
use ocibench::oci::source::{self, ImageSource};

/// What a canary file holds; the archive may try to overwrite or read it.
const CANARY: &[u8] = b"canary: outside the archive\n";
/// Blobs larger than this are not read whole (inputs are at most a few KiB of
/// tar, but sparse entries can declare large files).
const READ_LIMIT: u64 = 1 << 20;

pub fn run_oci(data: &[u8]) {
    run(data, true);
}

pub fn run_docker(data: &[u8]) {
    run(data, false);
}

fn client() -> &'static Arc<RegistryClient> {
    static CLIENT: OnceLock<Arc<RegistryClient>> = OnceLock::new();
    CLIENT.get_or_init(|| Arc::new(RegistryClient::builder().build()))
}

fn run(data: &[u8], oci: bool) {
    let sandbox = crate::scratch_root().join("archive");
    let _ = std::fs::remove_dir_all(&sandbox);
    let scratch = sandbox.join("scratch");
    std::fs::create_dir_all(&scratch).expect("create scratch");
    std::fs::write(sandbox.join("canary"), CANARY).expect("write canary");
    let file = sandbox.join("input.tar");
    std::fs::write(&file, fix_checksums(data)).expect("write archive");
    let location = if oci {
        ImageLocation::OciArchive {
            path: file.clone(),
            tag: None,
        }
    } else {
        ImageLocation::DockerArchive {
            path: file.clone(),
            reference: None,
        }
    };
    let opened = source::open(&location, client(), &scratch);
    let inside = regular_files(&scratch);
    if let Ok(src) = opened {
        let _ = src.name();
        read_image(src.as_ref(), &inside, oci);
    }
    check_sandbox(&sandbox);
}

/// Reads the image as a pull would: the top manifest, the platform's manifest of
/// an index, the config and the layers.
fn read_image(src: &dyn ImageSource, inside: &HashSet<Digest>, oci: bool) {
    let Ok(top) = src.fetch_manifest(None) else {
        return;
    };
    if oci {
        served("the top manifest", &top.bytes, inside);
    }
    let Ok((_, mut manifest)) = Manifest::parse(&top.media_type, &top.bytes) else {
        return;
    };
    for _ in 0..2 {
        let Manifest::Index(index) = &manifest else {
            break;
        };
        let Ok(entry) = index.select(&Platform::new("linux", "amd64", None)) else {
            return;
        };
        let Ok(child) = src.fetch_manifest(Some(&entry.digest)) else {
            return;
        };
        served("a child manifest", &child.bytes, inside);
        let Ok((_, m)) = Manifest::parse(&child.media_type, &child.bytes) else {
            return;
        };
        manifest = m;
    }
    let Manifest::Image(image) = manifest else {
        return;
    };
    for desc in std::iter::once(&image.config).chain(&image.layers) {
        blob(src, desc, inside);
    }
}

fn blob(src: &dyn ImageSource, desc: &Descriptor, inside: &HashSet<Digest>) {
    let Ok(stream) = src.open_blob(desc) else {
        return;
    };
    let mut bytes = Vec::new();
    let read = stream.reader.take(READ_LIMIT + 1).read_to_end(&mut bytes);
    if read.is_ok() && (bytes.len() as u64) <= READ_LIMIT {
        served(&format!("blob {}", desc.digest), &bytes, inside);
    }
}

fn served(what: &str, bytes: &[u8], inside: &HashSet<Digest>) {
    assert!(
        bytes != CANARY,
        "{what} is the canary beside the scratch folder"
    );
    assert!(
        inside.contains(&Digest::of(bytes)),
        "{what} ({} bytes: {:?}) is no regular file inside the scratch folder",
        bytes.len(),
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
    );
}

/// The digests of the regular files under `dir` (symlinks not followed).
fn regular_files(dir: &Path) -> HashSet<Digest> {
    let mut out = HashSet::new();
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file()
                && meta.len() <= READ_LIMIT
                && let Ok(b) = std::fs::read(e.path())
            {
                out.insert(Digest::of(&b));
            }
        }
    }
    out
}

/// Only the scratch folder may have changed.
fn check_sandbox(sandbox: &Path) {
    assert_eq!(
        std::fs::read(sandbox.join("canary")).ok().as_deref(),
        Some(CANARY),
        "the canary beside the scratch folder was changed"
    );
    let mut names: Vec<String> = std::fs::read_dir(sandbox)
        .expect("read sandbox")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["canary", "input.tar", "scratch"],
        "a file appeared beside the scratch folder"
    );
}

/// Sets each tar header's checksum, walking headers by their sizes.
pub fn fix_checksums(data: &[u8]) -> Vec<u8> {
    let mut tar = data.to_vec();
    let mut at = 0usize;
    while at + 512 <= tar.len() {
        let block = &mut tar[at..at + 512];
        if block.iter().all(|b| *b == 0) {
            at += 512;
            continue;
        }
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
        let size = header.entry_size().unwrap_or(0);
        let blocks = size.div_ceil(512);
        let Some(next) = blocks
            .checked_mul(512)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_add(at + 512))
        else {
            break;
        };
        at = next;
    }
    tar
}
