//! The chaos workload: what one operation is (`pull`, `size`, `push` from a registry or
//! an `oci:` layout, `build --from ... --output docker://...`), how it is run (an
//! `ocibench` process, sometimes SIGKILLed at a random moment), and how its result is
//! judged on the spot: exit 0 with the right image, exit 1 with an `error:` line, or a
//! SIGKILL the test sent. Anything else is a violation.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fixtures::FixtureLayout;
use crate::support::{FixtureImage, TestContext};

/// The kinds of operation, in summary order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Pull,
    Size,
    /// `push docker://PROXY/base/... docker://PROXY/chaos/...`: fetch into the cache
    /// through the proxy, then push from the cache.
    PushRegistry,
    /// `push oci:FIXTURE_LAYOUT docker://PROXY/chaos/...`: the layout read in place.
    PushLayout,
    /// `build --from PROXY/base/... --layer DIR:/chaos --output docker://PROXY/chaos/...`.
    Build,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Pull => "pull",
            OpKind::Size => "size",
            OpKind::PushRegistry => "push(registry)",
            OpKind::PushLayout => "push(oci:)",
            OpKind::Build => "build",
        }
    }

    /// Picks a kind: pulls and pushes most, then builds, then sizes.
    fn pick(rng: &mut fastrand::Rng) -> OpKind {
        match rng.u32(0..20) {
            0..=5 => OpKind::Pull,
            6..=8 => OpKind::Size,
            9..=11 => OpKind::PushRegistry,
            12..=14 => OpKind::PushLayout,
            _ => OpKind::Build,
        }
    }
}

/// An image the registry holds before the chaos starts (pushed by skopeo).
#[derive(Debug, Clone)]
pub struct Source {
    /// `base/busybox:1`.
    pub repo_tag: String,
    /// The image a pull of it must give (the linux/amd64 one for an index).
    pub image: FixtureImage,
}

/// What every worker shares: where to send requests, and what is there.
pub struct World<'a> {
    pub ctx: &'a TestContext,
    /// The chaos proxy's `127.0.0.1:PORT`.
    pub proxy: String,
    pub sources: Vec<Source>,
    pub layouts: Vec<&'static FixtureLayout>,
    /// `OCIBENCH_PUSH_CHUNK_BYTES` for every process.
    pub chunk_bytes: u64,
    /// Probability of SIGKILLing an operation.
    pub kill_rate: f64,
    /// An operation still running after this is killed and reported as hung.
    pub watchdog: Duration,
    /// Where builds write their `oci-archive:` outputs (shared by all workers).
    pub out_dir: PathBuf,
    /// Times in [`OpResult`] count from here (the proxy's start, as its events do).
    pub epoch: Instant,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0 and the result checked out.
    Ok,
    /// Exit 1 with this `error:` line.
    Failed(String),
    /// SIGKILLed by the test, as planned.
    Killed,
    /// Anything the contract forbids.
    Violation(String),
}

/// An image a successful push or build says it wrote: checked in the registry later.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `chaos/push-3:op-17`.
    pub repo_tag: String,
    pub digest: String,
    pub op: usize,
}

/// One finished operation.
#[derive(Debug, Clone)]
pub struct OpResult {
    pub id: usize,
    pub kind: OpKind,
    pub command: String,
    pub outcome: Outcome,
    pub pushed: Option<Pushed>,
    /// Start and end, since [`World::epoch`].
    pub span: (Duration, Duration),
    /// What it printed on stderr, kept unless it succeeded.
    pub stderr: String,
}

/// What a successful run must have produced.
enum Expect {
    /// `pull --json` / `size --json` of this image.
    Image {
        json_in: &'static str,
        image: FixtureImage,
    },
    /// A push of `image` to `repo_tag`.
    Push { repo_tag: String, digest: String },
    /// A build on `base` written to `repo_tag` (and to `archive`, if any).
    Build {
        repo_tag: String,
        base: FixtureImage,
        archive: Option<PathBuf>,
    },
}

/// Runs operation `id` (its kind and arguments drawn from `rng`) and judges it.
pub fn run_op(world: &World, id: usize, rng: &mut fastrand::Rng) -> OpResult {
    let kind = OpKind::pick(rng);
    let source = world.sources[rng.usize(0..world.sources.len())].clone();
    let from = format!("{}/{}", world.proxy, source.repo_tag);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("op-{id}-"))
        .tempdir_in(world.ctx.root())
        .expect("op scratch dir");
    let (args, expect): (Vec<String>, Expect) = match kind {
        OpKind::Pull | OpKind::Size => {
            let verb = if kind == OpKind::Pull { "pull" } else { "size" };
            let json_in = if kind == OpKind::Pull { "image" } else { "" };
            let expect = Expect::Image {
                json_in,
                image: source.image.clone(),
            };
            (strings(&[verb, "--json", &from]), expect)
        }
        OpKind::PushRegistry => {
            let repo_tag = format!("chaos/push-{}:op-{id}", id % 6);
            let dest = format!("docker://{}/{repo_tag}", world.proxy);
            let digest = source.image.manifest_digest.clone();
            (
                strings(&["push", "--json", &from, &dest]),
                Expect::Push { repo_tag, digest },
            )
        }
        OpKind::PushLayout => {
            let layout = world.layouts[rng.usize(0..world.layouts.len())];
            let repo_tag = format!("chaos/layout-{}:op-{id}", id % 6);
            let dest = format!("docker://{}/{repo_tag}", world.proxy);
            let digest = layout.image.manifest_digest.clone();
            (
                strings(&["push", "--json", &layout.oci_ref(), &dest]),
                Expect::Push { repo_tag, digest },
            )
        }
        OpKind::Build => {
            let layer = write_layer_dir(scratch.path(), id, rng);
            let repo_tag = format!("chaos/build-{}:op-{id}", id % 4);
            let dest = format!("docker://{}/{repo_tag}", world.proxy);
            let layer_arg = format!("{}:/chaos", layer.display());
            let mut args = strings(&[
                "build", "--json", "--from", &from, "--layer", &layer_arg, "--output", &dest,
            ]);
            // Half the builds also write an archive: a file output, renamed into place.
            let archive = rng.bool().then(|| world.out_dir.join(archive_name(id)));
            if let Some(a) = &archive {
                args.extend(strings(&[
                    "--output",
                    &format!("oci-archive:{}", a.display()),
                ]));
            }
            let expect = Expect::Build {
                repo_tag,
                base: source.image.clone(),
                archive,
            };
            (args, expect)
        }
    };
    let kill_after = (rng.f64() < world.kill_rate).then(|| Duration::from_millis(rng.u64(5..600)));
    let mut cmd = world.ctx.cmd(&args);
    cmd.env("OCIBENCH_PUSH_CHUNK_BYTES", world.chunk_bytes.to_string());
    let command = format!("ocibench {}", args.join(" "));
    let start = world.epoch.elapsed();
    let (ended, stdout, stderr) =
        run_with_kill(&mut cmd, scratch.path(), kill_after, world.watchdog);
    let span = (start, world.epoch.elapsed());
    let (outcome, pushed) = judge(id, ended, &stdout, &stderr, &expect);
    let stderr = if outcome == Outcome::Ok {
        String::new()
    } else {
        stderr
    };
    OpResult {
        id,
        kind,
        command,
        outcome,
        pushed,
        span,
        stderr,
    }
}

/// The archive a build op writes: `op-<id>.tar` in [`World::out_dir`].
pub fn archive_name(id: usize) -> String {
    format!("op-{id}.tar")
}

/// The manifest digest of an `oci-archive:` file, as skopeo reads it (`inspect --raw`).
pub fn archive_digest(path: &Path) -> Result<String, String> {
    let out = crate::support::tools::skopeo()
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", path.display()))
        .output()
        .map_err(|e| format!("skopeo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "skopeo cannot read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(crate::support::tools::sha256_bytes(&out.stdout))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A directory for one `--layer`: a random, incompressible payload (so the layer is
/// new, and big enough to go up in several chunks) and a small text file.
fn write_layer_dir(scratch: &Path, id: usize, rng: &mut fastrand::Rng) -> PathBuf {
    let dir = scratch.join("layer");
    std::fs::create_dir_all(&dir).expect("mkdir layer dir");
    let len = rng.usize(32 * 1024..512 * 1024);
    let payload: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
    std::fs::write(dir.join("payload.bin"), payload).expect("write payload");
    std::fs::write(dir.join("op.txt"), format!("chaos op {id}\n")).expect("write op.txt");
    dir
}

/// Why a process ended, as the test saw it.
enum Ended {
    Exited(ExitStatus),
    /// Killed by the test after `kill_after`.
    KilledByUs(ExitStatus),
    /// Still running at the watchdog; killed.
    Hung,
}

/// Spawns `cmd` with stdout/stderr in files under `dir`; SIGKILLs it after
/// `kill_after` (if still running), or at `watchdog`.
fn run_with_kill(
    cmd: &mut std::process::Command,
    dir: &Path,
    kill_after: Option<Duration>,
    watchdog: Duration,
) -> (Ended, String, String) {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let out = std::fs::File::create(&out_path).expect("create stdout file");
    let err = std::fs::File::create(&err_path).expect("create stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn ocibench");
    let started = Instant::now();
    let ended = loop {
        if let Some(status) = child.try_wait().expect("try_wait ocibench") {
            break Ended::Exited(status);
        }
        let elapsed = started.elapsed();
        if kill_after.is_some_and(|k| elapsed >= k) {
            let _ = child.kill();
            let status = child.wait().expect("wait for killed ocibench");
            break Ended::KilledByUs(status);
        }
        if elapsed >= watchdog {
            let _ = child.kill();
            let _ = child.wait();
            break Ended::Hung;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (ended, stdout, stderr)
}

/// Judges a finished operation against the contract.
fn judge(
    id: usize,
    ended: Ended,
    stdout: &str,
    stderr: &str,
    expect: &Expect,
) -> (Outcome, Option<Pushed>) {
    use std::os::unix::process::ExitStatusExt;
    let violation = |what: String| {
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        (
            Outcome::Violation(format!("{what}; stderr: {}", tail.join(" | "))),
            None,
        )
    };
    if stderr.contains("panicked at") {
        return violation("panicked".into());
    }
    let status = match ended {
        Ended::Hung => return violation("still running at the watchdog (hung)".into()),
        Ended::KilledByUs(status) if status.signal() == Some(libc::SIGKILL) => {
            return (Outcome::Killed, None);
        }
        // It finished before the kill landed: judge it like any other.
        Ended::KilledByUs(status) | Ended::Exited(status) => status,
    };
    match status.code() {
        Some(0) => match check_success(id, stdout, expect) {
            Ok(pushed) => (Outcome::Ok, pushed),
            Err(e) => violation(format!("exit 0 but {e}")),
        },
        Some(1) => match stderr.lines().find(|l| l.starts_with("error:")) {
            Some(line) => (Outcome::Failed(line.to_string()), None),
            None => violation("exit 1 without an `error:` line".into()),
        },
        Some(code) => violation(format!("exit status {code} (runtime failures must exit 1)")),
        None => violation(format!(
            "killed by signal {:?} the test did not send",
            status.signal()
        )),
    }
}

/// Checks the `--json` document of a successful operation.
fn check_success(id: usize, stdout: &str, expect: &Expect) -> Result<Option<Pushed>, String> {
    let json: Value = serde_json::from_str(stdout)
        .map_err(|e| format!("stdout is not one JSON document: {e}"))?;
    match expect {
        Expect::Image { json_in, image } => {
            let got = if json_in.is_empty() {
                &json
            } else {
                &json[*json_in]
            };
            for (field, want) in [
                ("digest", Value::from(image.manifest_digest.clone())),
                ("compressed_bytes", Value::from(image.compressed_bytes())),
                (
                    "uncompressed_bytes",
                    Value::from(image.uncompressed_bytes()),
                ),
            ] {
                if got[field] != want {
                    return Err(format!("{field} is {}, expected {want}", got[field]));
                }
            }
            Ok(None)
        }
        Expect::Push { repo_tag, digest } => {
            if json["digest"] != *digest.as_str() {
                return Err(format!(
                    "pushed digest {}, expected {digest}",
                    json["digest"]
                ));
            }
            Ok(Some(Pushed {
                repo_tag: repo_tag.clone(),
                digest: digest.clone(),
                op: id,
            }))
        }
        Expect::Build {
            repo_tag,
            base,
            archive,
        } => {
            let built = json["image"]["digest"].as_str().unwrap_or_default();
            let output = json["outputs"][0]["digest"].as_str().unwrap_or_default();
            if built.is_empty() || built != output {
                return Err(format!("built {built:?} but wrote {output:?}"));
            }
            let layers = json["image"]["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let reused = base
                .layers
                .iter()
                .zip(&layers)
                .all(|(want, got)| got["digest"] == *want.digest.as_str());
            if layers.len() != base.layers.len() + 1 || !reused {
                return Err(format!(
                    "the built image's layers do not start with the base's: {layers:?}"
                ));
            }
            if let Some(archive) = archive {
                // An archive is OCI: a Docker-schema2 build is converted, so its digest
                // is the one the output's report gives, not the built manifest's.
                let reported = json["outputs"][1]["manifest_digest"].as_str();
                let digest = archive_digest(archive)?;
                if reported != Some(digest.as_str()) {
                    return Err(format!(
                        "{} holds {digest}, the report says {reported:?}",
                        archive.display()
                    ));
                }
            }
            Ok(Some(Pushed {
                repo_tag: repo_tag.clone(),
                digest: built.to_string(),
                op: id,
            }))
        }
    }
}
