//! `podman pull` of a reference, undone on drop as a load is (`image`).
//!
//! A cold start (image absent from the node until pulled) starts with this pull,
//! so besides the image it reports how many layers podman really copied and how
//! many it skipped because its storage already had them.
//!
//! What podman 4.3 (Debian 12) prints about that depends on the terminal. On one,
//! its progress bars end in `Copying blob 945d365e9808 skipped: already exists`
//! or `... done`. Without one, as here, every layer gets the same line,
//! `Copying blob sha256:945d...`, copied or not. Its debug log, though, names each
//! reused blob (`Skipping blob sha256:... (already present):`, containers/image's
//! own decision), so the pull runs with `--log-level=debug` and its stderr is
//! read for both forms. The debug lines are left out of error messages.

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use super::RunnerError;
use super::cleanup::{self, Resource};
use super::image::{self, LoadedImage, known_images};
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

/// What podman's stderr says about the layers of a pull.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Distinct layers on `Copying blob` lines.
    pub blobs: usize,
    /// Those podman reused from its storage.
    pub skipped: usize,
}

/// Parses `podman pull`'s stderr: plain, on a terminal (progress bars redrawn
/// with ANSI escapes and carriage returns), or with `--log-level=debug`.
pub fn parse_pull_progress(stderr: &str) -> PullProgress {
    let mut blobs: Vec<String> = Vec::new();
    let mut skipped: HashSet<String> = HashSet::new();
    for line in strip_ansi(stderr).split(['\n', '\r']) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Copying blob ") {
            let Some(id) = rest.split_whitespace().next() else {
                continue;
            };
            let id = short_id(id);
            if rest.contains("skipped: already exists") {
                skipped.insert(id.clone());
            }
            if !blobs.contains(&id) {
                blobs.push(id);
            }
        } else if let Some(rest) = line
            .split_once("msg=\"Skipping blob ")
            .map(|(_, rest)| rest)
            .filter(|rest| rest.contains("(already present)"))
        {
            if let Some(id) = rest.split_whitespace().next() {
                skipped.insert(short_id(id));
            }
        }
    }
    PullProgress {
        blobs: blobs.len(),
        skipped: skipped.iter().filter(|id| blobs.contains(id)).count(),
    }
}

/// `sha256:HEX` (plain and debug output) or 12 hex digits (terminal), as 12 hex digits.
fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id[..id.len().min(12)].to_string()
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

/// stderr without podman's debug and info log lines (`time="..." level=debug msg=...`).
fn without_debug_log(stderr: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| {
            !(l.starts_with("time=\"")
                && (l.contains(" level=debug ") || l.contains(" level=info ")))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

pub(crate) fn pull(
    podman: &Path,
    reference: &str,
    tls_verify: bool,
) -> Result<Pulled, RunnerError> {
    let before = known_images(podman)?;
    let existed_name = before.contains(reference);
    let creating = cleanup::creating()?;
    // Recorded before the pull: a signal during it removes what it stored, unless
    // the name was there already.
    let registration = (!existed_name).then(|| {
        creating.record(Resource::Image {
            podman: podman.to_path_buf(),
            name: reference.to_string(),
        })
    });
    let started = Instant::now();
    let out = raw_output(
        detached(podman)
            .args(["--log-level=debug", "pull"])
            .arg(format!("--tls-verify={tls_verify}"))
            .arg(reference),
        "podman pull",
    );
    let elapsed = started.elapsed();
    drop(creating);
    let out = out?;
    if !out.status.success() {
        return Err(failed(
            "podman pull",
            &Output {
                stderr: without_debug_log(&out.stderr),
                ..out
            },
        ));
    }
    let progress = parse_pull_progress(&String::from_utf8_lossy(&out.stderr));
    let inspect = output(
        detached(podman).args(["image", "inspect", "--format", "{{.Id}}", reference]),
        "podman image inspect",
    );
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
    let id = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let existed = existed_name || before.contains(&id);
    // An image podman had under another name (or by ID only) is kept whole.
    let registration = if existed { None } else { registration };
    let image = match (existed_name, existed) {
        (false, true) => image::renamed(podman, reference.to_string(), id),
        _ => image::created(podman, reference.to_string(), id, existed, registration),
    };
    Ok(Pulled {
        image,
        layers_copied: progress.blobs - progress.skipped,
        layers_present: progress.skipped,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from podman 4.3.1 (Debian 12) pulling a two-layer image from
    /// `oci::serve`, stderr not a terminal, no debug log: the first pull and a
    /// second one with both layers already stored print the same lines.
    const NO_TTY: &str = "Trying to pull 127.0.0.1:43969/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\nGetting image source signatures\nCopying blob sha256:945d365e980867b97bdc61e2d68cc701b7e1c19aebb6f5e93c398edcb4bd4d10\nCopying blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998\nCopying config sha256:76c5b1740bfd3d5689f8ba46cc6c13f1e6bc671da2b921040150f37dde5da963\nWriting manifest to image destination\nStoring signatures\n";

    /// The same pulls on a terminal (`script`, 250 columns): layers present...
    const TTY_SKIPPED: &str = "Trying to pull 127.0.0.1:42857/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\r\nGetting image source signatures\r\nCopying blob 25b572f08a7b .                                        \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\n\u{1b}[1A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\nCopying blob 945d365e9808 .                                        \r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b skipped: already exists  \r\nCopying blob 945d365e9808 skipped: already exists  \r\nCopying config 76c5b1740b [======================================] 653.0b / 653.0b\r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\nWriting manifest to image destination\r\nStoring signatures\r\n";

    /// ... and layers copied.
    const TTY_COPIED: &str = "Trying to pull 127.0.0.1:42857/ocibench/cold/probe@sha256:7b13b0d3030c217a097de2f525778e5d70a70b3f5d7a89343f3d3255d9297765...\r\nGetting image source signatures\r\nCopying blob 25b572f08a7b [======================================] 145.0b / 145.0b\r\nCopying blob 945d365e9808 [======================================] 1.0MiB / 1.0MiB\r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b done  \r\nCopying blob 945d365e9808 done  \r\n\u{1b}[2A\u{1b}[JCopying blob 25b572f08a7b done  \r\nCopying blob 945d365e9808 done  \r\nCopying config 76c5b1740b [======================================] 653.0b / 653.0b\r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\n\u{1b}[1A\u{1b}[JCopying config 76c5b1740b done  \r\nWriting manifest to image destination\r\nStoring signatures\r\n";

    /// The lines about layers (verbatim, in order) of the same two pulls with
    /// `--log-level=debug`, stderr not a terminal: first copied...
    const DEBUG_COPIED: &str = r#"Copying blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998
Copying blob sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914
time="2026-11-26T18:27:37Z" level=debug msg="Checking if we can reuse blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998: general substitution = false, compression for MIME type \"application/vnd.oci.image.layer.v1.tar+gzip\" = true"
time="2026-11-26T18:27:37Z" level=debug msg="Checking if we can reuse blob sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914: general substitution = false, compression for MIME type \"application/vnd.oci.image.layer.v1.tar+gzip\" = true"
time="2026-11-26T18:27:37Z" level=debug msg="Failed to retrieve partial blob: blob type not supported for partial retrieval"
time="2026-11-26T18:27:37Z" level=debug msg="Failed to retrieve partial blob: blob type not supported for partial retrieval"
time="2026-11-26T18:27:37Z" level=debug msg="Downloading /v2/ocibench/cold/probe/blobs/sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998"
time="2026-11-26T18:27:37Z" level=debug msg="Downloading /v2/ocibench/cold/probe/blobs/sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914"
Copying config sha256:0b399a21cf104a6382138ad6bc327d76771e3cb84a46f987546feb23849128c9
"#;

    /// ... then reused.
    const DEBUG_SKIPPED: &str = r#"Copying blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998
time="2026-11-26T18:27:37Z" level=debug msg="Checking if we can reuse blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998: general substitution = false, compression for MIME type \"application/vnd.oci.image.layer.v1.tar+gzip\" = true"
time="2026-11-26T18:27:37Z" level=debug msg="Skipping blob sha256:25b572f08a7b63a6f3e38542d4c4644d1c8f724ee09747f2e84f041034f13998 (already present):"
Copying blob sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914
time="2026-11-26T18:27:37Z" level=debug msg="Checking if we can reuse blob sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914: general substitution = false, compression for MIME type \"application/vnd.oci.image.layer.v1.tar+gzip\" = true"
time="2026-11-26T18:27:37Z" level=debug msg="Skipping blob sha256:e97be3f04dddeede6f9a11fc7b03b6ec3762b6d99f767798e762af48b9acb914 (already present):"
Copying config sha256:0b399a21cf104a6382138ad6bc327d76771e3cb84a46f987546feb23849128c9
"#;

    #[test]
    fn pull_progress_of_podman_4_3_debug_log() {
        assert_eq!(
            parse_pull_progress(DEBUG_COPIED),
            PullProgress {
                blobs: 2,
                skipped: 0
            }
        );
        assert_eq!(
            parse_pull_progress(DEBUG_SKIPPED),
            PullProgress {
                blobs: 2,
                skipped: 2
            }
        );
    }

    #[test]
    fn debug_lines_are_left_out_of_errors() {
        let stderr = b"time=\"2026-11-26T18:27:37Z\" level=info msg=\"podman filtering at log level debug\"\nTrying to pull x...\ntime=\"2026-11-26T18:27:37Z\" level=debug msg=\"GET https://x/v2/\"\nError: initializing source docker://x: boom\n";
        assert_eq!(
            String::from_utf8(without_debug_log(stderr)).unwrap(),
            "Trying to pull x...\nError: initializing source docker://x: boom"
        );
    }

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
