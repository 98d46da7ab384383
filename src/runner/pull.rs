//! `podman pull` of a reference, undone on drop as a load is (`image`).
//!
//! A cold start (image absent from the node until pulled) starts with this pull,
//! so besides the image it reports how many layers podman really copied and how
//! many it skipped because its storage already had them.
//!
//! podman 4.3 (Debian 12) says which blobs it skipped only on a terminal: there
//! its progress bars end in `Copying blob 945d365e9808 skipped: already exists`
//! (or `... done`), while without a terminal, as here, every blob gets the same
//! line, `Copying blob sha256:945d...`, copied or not. So the skipped layers are
//! also found from podman's storage itself: a layer whose diff_id some image
//! already had before the pull is one podman reuses (containers/image looks
//! layers up by uncompressed digest). The stderr marker still counts where a
//! podman prints it.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::RunnerError;
use super::cleanup::{self, Resource};
use super::image::{self, LoadedImage};
use super::podman::{detached, failed, output, raw_output};

/// What `podman pull` fetched.
#[derive(Debug)]
pub struct Pulled {
    pub image: LoadedImage,
    /// layers podman copied
    pub layers_copied: usize,
    /// layers it skipped as already in its storage
    pub layers_present: usize,
    /// How long the `podman pull` command took (the bookkeeping around it excluded).
    pub elapsed: Duration,
}

/// What podman's store held before the pull.
struct Snapshot {
    /// Every image ID and name.
    names: HashSet<String>,
    /// Every layer diff_id of every image.
    diff_ids: HashSet<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    #[serde(default)]
    id: String,
    #[serde(default)]
    names: Option<Vec<String>>,
}

fn snapshot(podman: &Path) -> Result<Snapshot, RunnerError> {
    let out = output(
        detached(podman).args(["images", "--all", "--format", "json"]),
        "podman images",
    )?;
    let list: Vec<ListEntry> =
        serde_json::from_slice(&out.stdout).map_err(|e| RunnerError::Output {
            what: "podman images --all --format json".into(),
            detail: e.to_string(),
        })?;
    let ids: Vec<String> = list.iter().map(|e| e.id.clone()).collect();
    let diff_ids = if ids.is_empty() {
        HashSet::new()
    } else {
        let out = raw_output(
            detached(podman)
                .args(["image", "inspect", "--format", LAYERS_FORMAT])
                .args(&ids),
            "podman image inspect",
        )?;
        // An image removed since the listing (by another process) fails the
        // command after the others were printed: their layers still count.
        let vanished = String::from_utf8_lossy(&out.stderr).contains("image not known");
        if !out.status.success() && !vanished {
            return Err(failed("podman image inspect", &out));
        }
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let names = list
        .into_iter()
        .flat_map(|e| std::iter::once(e.id).chain(e.names.unwrap_or_default()))
        .collect();
    Ok(Snapshot { names, diff_ids })
}

/// An image's layer diff_ids, space-separated.
const LAYERS_FORMAT: &str = "{{range .RootFS.Layers}}{{.}} {{end}}";

/// What podman's stderr says about the blobs of a pull.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Distinct blobs (layers) on `Copying blob` lines.
    pub blobs: usize,
    /// Those marked `skipped: already exists` (podman prints it on a terminal only).
    pub skipped: usize,
}

/// Parses `podman pull`'s stderr, with or without a terminal (progress bars
/// redrawn with ANSI escapes and carriage returns).
pub fn parse_pull_progress(stderr: &str) -> PullProgress {
    let mut blobs: Vec<String> = Vec::new();
    let mut skipped: HashSet<String> = HashSet::new();
    for line in strip_ansi(stderr).split(['\n', '\r']) {
        let Some(rest) = line.trim().strip_prefix("Copying blob ") else {
            continue;
        };
        let Some(id) = rest.split_whitespace().next() else {
            continue;
        };
        // `sha256:HEX` without a terminal, 12 hex digits with one.
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        let id = id[..id.len().min(12)].to_string();
        if rest.contains("skipped: already exists") {
            skipped.insert(id.clone());
        }
        if !blobs.contains(&id) {
            blobs.push(id);
        }
    }
    PullProgress {
        blobs: blobs.len(),
        skipped: skipped.len(),
    }
}

/// `text` without ANSI CSI sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn pull(
    podman: &Path,
    reference: &str,
    tls_verify: bool,
) -> Result<Pulled, RunnerError> {
    let before = snapshot(podman)?;
    let creating = cleanup::creating()?;
    // Recorded before the pull: a signal during it removes what it stored, unless
    // the name was there already.
    let registration = (!before.names.contains(reference)).then(|| {
        creating.record(Resource::Image {
            podman: podman.to_path_buf(),
            name: reference.to_string(),
        })
    });
    let started = Instant::now();
    let out = output(
        detached(podman)
            .arg("pull")
            .arg(format!("--tls-verify={tls_verify}"))
            .arg(reference),
        "podman pull",
    );
    let elapsed = started.elapsed();
    drop(creating);
    let out = out?;
    let progress = parse_pull_progress(&String::from_utf8_lossy(&out.stderr));
    let inspect = output(
        detached(podman).args([
            "image",
            "inspect",
            "--format",
            &format!("{{{{.Id}}}} {LAYERS_FORMAT}"),
            reference,
        ]),
        "podman image inspect",
    );
    let existed_name = before.names.contains(reference);
    let inspect = match inspect {
        Ok(i) => i,
        Err(e) => {
            // Pulled but unreadable: still remove what the pull stored.
            drop(image::created(
                podman,
                reference.to_string(),
                String::new(),
                existed_name,
                registration,
            ));
            return Err(e);
        }
    };
    let text = String::from_utf8_lossy(&inspect.stdout);
    let mut words = text.split_whitespace();
    let id = words.next().unwrap_or_default().to_string();
    let layers: Vec<&str> = words.collect();
    let existed = existed_name || before.names.contains(&id);
    let known = layers
        .iter()
        .filter(|d| before.diff_ids.contains(**d))
        .count();
    let layers_present = known.max(progress.skipped).min(layers.len());
    // An image podman had under another name (or by ID only) is kept whole.
    let registration = if existed { None } else { registration };
    Ok(Pulled {
        image: image::created(podman, reference.to_string(), id, existed, registration),
        layers_copied: layers.len() - layers_present,
        layers_present,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from podman 4.3.1 (Debian 12) pulling a two-layer image from
    /// `oci::serve`, stderr not a terminal: the first pull and a second one with
    /// both layers already stored print the same lines.
    const NO_TTY: &str = "Trying to pull 127.0.0.1:43969/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\nGetting image source signatures\nCopying blob sha256:945d365e980867b97bdc61e2d68cc701b7e1c19aebb6f5e93c398edcb4bd4d10\nCopying blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998\nCopying config sha256:76c5b1740bfd3d5689f8ba46cc6c13f1e6bc671da2b921040150f37dde5da963\nWriting manifest to image destination\nStoring signatures\n";

    /// The same pulls on a terminal (`script`, 250 columns): layers present...
    const TTY_SKIPPED: &str = "Trying to pull 127.0.0.1:42857/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\r\nGetting image source signatures\r\nCopying blob 25b572f08a7b .                                        \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\nCopying blob 945d365e9808 .                                        \r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\nCopying blob 945d365e9808 skipped: already exists  \r\nCopying config 76c5b1740b [======================================] 653.0b / 653.0b\r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\nWriting manifest to image destination\r\nStoring signatures\r\n";

    /// ... and layers copied.
    const TTY_COPIED: &str = "Trying to pull 127.0.0.1:42857/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\r\nGetting image source signatures\r\nCopying blob 25b572f08a7b [======================================] 145.0b / 145.0b\r\nCopying blob 945d365e9808 [======================================] 1.0MiB / 1.0MiB\r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b done  \r\nCopying blob 945d365e9808 done  \r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b done  \r\nCopying blob 945d365e9808 done  \r\nCopying config 76c5b1740b [======================================] 653.0b / 653.0b\r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\nWriting manifest to image destination\r\nStoring signatures\r\n";

    #[test]
    fn pull_progress_of_podman_4_3() {
        assert_eq!(
            parse_pull_progress(NO_TTY),
            PullProgress {
                blobs: 2,
                skipped: 0
            }
        );
        assert_eq!(
            parse_pull_progress(TTY_SKIPPED),
            PullProgress {
                blobs: 2,
                skipped: 2
            }
        );
        assert_eq!(
            parse_pull_progress(TTY_COPIED),
            PullProgress {
                blobs: 2,
                skipped: 0
            }
        );
        assert_eq!(parse_pull_progress(""), PullProgress::default());
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[2A\u{1b}[Jab\u{1b}[1mc"), "abc");
    }
}
