//! Interrupted commands leave nothing behind: the real binary is started on a
//! source that stalls mid-transfer (a loopback registry that stops sending in the
//! middle of a layer, or an archive fed through a FIFO that stops in the middle),
//! and then signalled. SIGINT/SIGTERM/SIGHUP: the command removes what it started
//! and exits 128 + the signal. SIGKILL: the debris stays, and the next run sweeps it
//! however young it is, because no live process holds it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::mock_image::{MockImage, sha};
use crate::support::{TestContext, Variant, export_fixture};

/// A registry serving one image (`stall:1`) whose layer stops after half its bytes
/// and never finishes. `stalled` turns true once the half has been sent.
struct StallingRegistry {
    addr: String,
    stalled: Arc<AtomicBool>,
}

impl StallingRegistry {
    fn start() -> StallingRegistry {
        // ~1 MB of incompressible data, so half of it reaches the temp file.
        let mut data = vec![0u8; 1 << 20];
        let mut x: u32 = 12345;
        for b in &mut data {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        let MockImage {
            manifest,
            config,
            layer,
            ..
        } = MockImage::one_file("noise.bin", &data)
            .compression(flate2::Compression::fast())
            .build();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        let blobs = Arc::new((manifest, config, layer));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (blobs, flag) = (blobs.clone(), flag.clone());
                std::thread::spawn(move || serve(stream, &blobs, &flag));
            }
        });
        StallingRegistry { addr, stalled }
    }

    fn reference(&self) -> String {
        format!("{}/stall:1", self.addr)
    }
}

fn serve(mut s: std::net::TcpStream, blobs: &(Vec<u8>, Vec<u8>, Vec<u8>), stalled: &AtomicBool) {
    let (manifest, config, layer) = blobs;
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    loop {
        let Some(head) = crate::support::http_server::read_head(&mut reader) else {
            return;
        };
        let path = head.target.clone();
        let head_only = head.method == "HEAD";
        let (status, ctype, body): (u16, &str, &[u8]) = if path == "/v2/" {
            (200, "application/json", b"{}")
        } else if path == "/v2/stall/manifests/1" {
            (200, "application/vnd.oci.image.manifest.v1+json", manifest)
        } else if path == format!("/v2/stall/blobs/{}", sha(config)) {
            (200, "application/octet-stream", config)
        } else if path == format!("/v2/stall/blobs/{}", sha(layer)) {
            let mut h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                layer.len()
            )
            .into_bytes();
            h.extend_from_slice(&layer[..layer.len() / 2]);
            let _ = s.write_all(&h);
            let _ = s.flush();
            stalled.store(true, Ordering::SeqCst);
            // Never finish; the client is signalled meanwhile.
            std::thread::sleep(Duration::from_secs(600));
            return;
        } else {
            (
                404,
                "application/json",
                br#"{"errors":[{"code":"NOT_FOUND"}]}"#,
            )
        };
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\n\r\n",
            body.len(),
            sha(body)
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(body);
        }
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// Waits (at most a minute, polling) until `ready` holds; panics naming `what`.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries of `dir` whose names start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we have not reaped.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

fn spawn(ctx: &TestContext, args: &[&str]) -> Child {
    ctx.cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn an_interrupted_pull_removes_its_partial_blob_and_exits_128_plus_the_signal() {
    let registry = StallingRegistry::start();
    for (sig, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        let ctx = TestContext::new();
        let blobs = ctx.cache_dir.join("blobs/sha256");
        let child = spawn(&ctx, &["pull", &registry.reference()]);
        wait_for("a partial blob", || {
            registry.stalled.load(Ordering::SeqCst) && !entries(&blobs, ".tmp-").is_empty()
        });
        signal(&child, sig);
        let (status, stderr) = finish(child);
        assert_eq!(status, Some(code), "signal {sig}: {stderr}");
        assert_eq!(entries(&blobs, ".tmp-"), Vec::<PathBuf>::new(), "{stderr}");
        assert!(stderr.contains("ocibench: "), "a line says why: {stderr}");
    }
}

#[test]
fn size_build_and_push_are_interrupted_the_same_way() {
    let registry = StallingRegistry::start();
    let image = registry.reference();
    let dest = format!("{}/elsewhere:1", registry.addr);
    for args in [
        vec!["size", image.as_str()],
        vec!["build", "--from", image.as_str(), "--output", "oci:out"],
        vec!["push", image.as_str(), dest.as_str()],
    ] {
        let ctx = TestContext::new();
        let blobs = ctx.cache_dir.join("blobs/sha256");
        let child = spawn(&ctx, &args);
        wait_for("a partial blob", || !entries(&blobs, ".tmp-").is_empty());
        signal(&child, libc::SIGINT);
        let (status, stderr) = finish(child);
        assert_eq!(status, Some(130), "{args:?}: {stderr}");
        assert_eq!(entries(&blobs, ".tmp-"), Vec::<PathBuf>::new(), "{args:?}");
        assert_eq!(
            crate::support::tools::listing(&ctx.work_dir),
            Vec::<String>::new()
        );
    }
}

#[test]
fn what_a_killed_pull_leaves_is_swept_by_the_next_run() {
    let registry = StallingRegistry::start();
    let ctx = TestContext::new();
    let blobs = ctx.cache_dir.join("blobs/sha256");
    let child = spawn(&ctx, &["pull", &registry.reference()]);
    wait_for("a partial blob", || {
        registry.stalled.load(Ordering::SeqCst) && !entries(&blobs, ".tmp-").is_empty()
    });
    signal(&child, libc::SIGKILL);
    let _ = finish(child);
    let left = entries(&blobs, ".tmp-");
    assert_eq!(left.len(), 1, "SIGKILL leaves the partial blob: {left:?}");
    // Seconds old, not a day: the next run removes it, since no process holds it.
    let other = crate::support::fixture_layout(Variant::Oci).oci_ref();
    ctx.run(["pull", &other]).success();
    assert_eq!(entries(&blobs, ".tmp-"), Vec::<PathBuf>::new());
}

#[test]
fn a_live_pull_keeps_its_temporaries_while_another_run_sweeps() {
    let registry = StallingRegistry::start();
    let ctx = TestContext::new();
    let blobs = ctx.cache_dir.join("blobs/sha256");
    let child = spawn(&ctx, &["pull", &registry.reference()]);
    wait_for("a partial blob", || {
        registry.stalled.load(Ordering::SeqCst) && !entries(&blobs, ".tmp-").is_empty()
    });
    let report = ctx.run(["cache", "prune", "--json"]);
    // The live pull holds the cache: prune refuses rather than take its blobs.
    let report = report.failure(1).stderr_contains("in use");
    assert!(report.stdout.is_empty());
    ctx.run(["cache", "verify"]).success();
    assert_eq!(entries(&blobs, ".tmp-").len(), 1, "the live temp is kept");
    signal(&child, libc::SIGINT);
    let (status, _) = finish(child);
    assert_eq!(status, Some(130));
}

#[test]
fn an_interrupted_archive_pull_removes_its_unpacked_copy() {
    let ctx = TestContext::new();
    let archive = ctx.path("image.tar");
    export_fixture(
        Variant::TwoLayers,
        &format!("oci-archive:{}", archive.display()),
    );
    let bytes = std::fs::read(&archive).unwrap();
    let fifo = ctx.path("slow.tar");
    crate::support::run(std::process::Command::new("mkfifo").arg(&fifo));
    let child = spawn(&ctx, &["pull", &format!("oci-archive:{}", fifo.display())]);
    // Feed half the archive, then stall with the FIFO open.
    let fifo2 = fifo.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo2)
            .unwrap();
        let _ = f.write_all(&bytes[..bytes.len() / 2]);
        let _ = rx.recv();
    });
    let scratch_root = ctx.cache_dir.join("ocibench");
    wait_for("an unpacked copy", || {
        entries(&scratch_root, ".unpack-")
            .iter()
            .any(|d| d.join("blobs").exists())
    });
    signal(&child, libc::SIGINT);
    let (status, stderr) = finish(child);
    drop(tx);
    writer.join().unwrap();
    assert_eq!(status, Some(130), "{stderr}");
    assert_eq!(entries(&scratch_root, ".unpack-"), Vec::<PathBuf>::new());
}
