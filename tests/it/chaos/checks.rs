//! What must hold after the chaos, judged by independent tools: every blob in the
//! shared cache hashes to its name (`sha256sum`), no temporary file or scratch dir is
//! left, every image the cache's index names is there whole, every layer record is
//! whole JSON; and every image a push or build said it wrote is in the registry whole:
//! `skopeo inspect --raw` gives its digest, the registry's stored blobs hash to their
//! names, and `skopeo copy` reads it back out (verifying every blob).
//!
//! Each check returns its problems as sentences instead of panicking at the first, so
//! one run reports every defect it found.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::workload::{OpResult, Outcome, Pushed, archive_digest, archive_name};
use crate::support::Registry;
use crate::support::tools;

/// Names the store, `pull` and `build` give their temporary files and dirs.
fn is_temp(name: &str) -> bool {
    [".tmp-", ".unpack-", ".run-"]
        .iter()
        .any(|p| name.starts_with(p))
        || name.contains(".tmp-")
}

/// Every path under `root`, depth first (not following symlinks).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            all.push(path);
        }
    }
    all.sort();
    all
}

/// `sha256sum` of many files (batched); returns `(path, "sha256:<hex>")`.
fn sha256_many(files: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut sums = Vec::new();
    for batch in files.chunks(200) {
        let out = tools::run_stdout(tools::command("sha256sum", "coreutils").args(batch));
        for (line, path) in out.lines().zip(batch) {
            let hex = line.split_whitespace().next().unwrap_or_default();
            sums.push((path.clone(), format!("sha256:{hex}")));
        }
    }
    sums
}

/// What the cache check found.
#[derive(Debug, Default)]
pub struct CacheFindings {
    pub blobs: usize,
    pub images: usize,
    pub temps: Vec<String>,
    pub problems: Vec<String>,
}

/// Checks the blob store at `root` (after the final command has opened it).
pub fn check_cache(root: &Path) -> CacheFindings {
    let mut found = CacheFindings::default();
    let blob_dir = root.join("blobs/sha256");
    let mut blobs = Vec::new();
    for path in walk(root) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if is_temp(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            found.temps.push(rel.display().to_string());
        } else if path.parent() == Some(blob_dir.as_path()) {
            blobs.push(path);
        }
    }
    found.blobs = blobs.len();
    for (path, sum) in sha256_many(&blobs) {
        let name = path.file_name().unwrap().to_string_lossy();
        if sum != format!("sha256:{name}") {
            found
                .problems
                .push(format!("cache blob {name} hashes to {sum}"));
        }
    }
    for path in walk(&root.join("ocibench/layers")) {
        let ok = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v.is_object());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !ok && !is_temp(&name) {
            found.problems.push(format!(
                "layer record {} is not a JSON object",
                path.display()
            ));
        }
    }
    check_index(root, &mut found);
    found
}

/// Every manifest `index.json` names is stored, and so is every blob of it.
fn check_index(root: &Path, found: &mut CacheFindings) {
    let index: Value = match std::fs::read(root.join("index.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            found.problems.push(format!("cache index.json: {e}"));
            return;
        }
    };
    let stored = |d: &Value| -> Result<Vec<u8>, String> {
        let digest = d["digest"].as_str().unwrap_or_default();
        let path = root
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let bytes = std::fs::read(&path).map_err(|e| format!("{digest}: {e}"))?;
        match d["size"].as_u64() {
            Some(size) if size == bytes.len() as u64 => Ok(bytes),
            size => Err(format!(
                "{digest}: {} bytes, descriptor says {size:?}",
                bytes.len()
            )),
        }
    };
    for entry in index["manifests"].as_array().into_iter().flatten() {
        found.images += 1;
        let name = entry["annotations"]["org.opencontainers.image.ref.name"].clone();
        let manifest = match stored(entry).and_then(|b| {
            serde_json::from_slice::<Value>(&b).map_err(|e| format!("manifest JSON: {e}"))
        }) {
            Ok(m) => m,
            Err(e) => {
                found
                    .problems
                    .push(format!("cache image {name}: manifest {e}"));
                continue;
            }
        };
        let blobs = std::iter::once(&manifest["config"])
            .filter(|c| c.is_object())
            .chain(manifest["layers"].as_array().into_iter().flatten());
        for d in blobs {
            if let Err(e) = stored(d) {
                found.problems.push(format!("cache image {name}: blob {e}"));
            }
        }
    }
}

/// Runs `cmd`; its stdout, or a sentence saying how it failed.
fn output(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tools::display(cmd)))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            tools::display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Checks that the registry holds one pushed image whole (straight, not through the proxy).
fn check_pushed(registry: &Registry, pushed: &Pushed) -> Result<(), String> {
    let docker_ref = registry.docker_ref(&pushed.repo_tag);
    let raw = output(
        tools::skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(&docker_ref),
    )?;
    let digest = tools::sha256_bytes(&raw);
    if digest != pushed.digest {
        return Err(format!(
            "manifest is {digest}, the push said {}",
            pushed.digest
        ));
    }
    let manifest: Value =
        serde_json::from_slice(&raw).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let digests: Vec<String> = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str().map(String::from))
        .collect();
    let paths: Vec<PathBuf> = digests.iter().map(|d| registry.blob_data_path(d)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(format!("blob {} is not stored", missing.display()));
    }
    for ((_, sum), want) in sha256_many(&paths).iter().zip(&digests) {
        if sum != want {
            return Err(format!("stored blob {want} hashes to {sum}"));
        }
    }
    let copy = tempfile::tempdir().map_err(|e| e.to_string())?;
    output(
        tools::skopeo()
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(&docker_ref)
            .arg(format!("oci:{}:copy", copy.path().display())),
    )?;
    Ok(())
}

/// Checks every pushed image, on `threads` threads; returns the problems.
pub fn check_registry(registry: &Registry, pushed: &[Pushed], threads: usize) -> Vec<String> {
    let per = pushed.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = pushed
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|p| {
                            check_pushed(registry, p).err().map(|e| {
                                format!("op {} pushed {} ({}): {e}", p.op, p.repo_tag, p.digest)
                            })
                        })
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("registry check thread"))
            .collect()
    })
}

/// What the check of the builds' file outputs found.
#[derive(Debug, Default)]
pub struct OutputFindings {
    /// Archives found whole (every one must be).
    pub archives: usize,
    /// Temp files beside them left by builds the test SIGKILLed (nothing can remove
    /// those but a later write of the same output).
    pub killed_temps: usize,
    pub problems: Vec<String>,
}

/// Every `op-N.tar` in `out_dir` is a whole archive skopeo reads, whatever became of
/// its build; a temp file beside it is allowed only if the test SIGKILLed that build.
pub fn check_outputs(out_dir: &Path, results: &[OpResult]) -> OutputFindings {
    let mut found = OutputFindings::default();
    let killed = |name: &str| {
        results.iter().any(|r| {
            r.outcome == Outcome::Killed && name.starts_with(&format!("{}.", archive_name(r.id)))
        })
    };
    for path in walk(out_dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if is_temp(&name) {
            if killed(&name) {
                found.killed_temps += 1;
            } else {
                found.problems.push(format!(
                    "{name} left beside the outputs by a build that ended"
                ));
            }
            continue;
        }
        match archive_digest(&path) {
            Ok(_) => found.archives += 1,
            Err(e) => found.problems.push(format!("half-written output: {e}")),
        }
    }
    found
}
