//! Limits a hostile or broken registry cannot push ocibench past: an image config
//! declared (or served) larger than the cap is refused before it is read into
//! memory; a blob trickling in below the low-speed limit is abandoned and retried;
//! `--timeout` ends a registry command that would otherwise wait on a stalled
//! server. The time limits are tiny here (env, hidden flags) and only failures are
//! timed: never a threshold on success.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::TestContext;
use crate::support::http_server::{Reply, Request, Server, read_head, write_response};
use crate::support::mock_image::{MockImage, sha};
use crate::support::tools::listing;

type Image = MockImage;

/// A one-layer image whose manifest says the config has `config_size` bytes.
fn image(config_size: Option<u64>) -> Image {
    let data = b"limits\n".repeat(50);
    let spec = MockImage::one_file("f.txt", &data);
    match config_size {
        Some(n) => spec.declared_config_size(n),
        None => spec,
    }
    .build()
}

/// Serves `img` as `app:v1`; the config blob's answer is `config_body`'s.
fn serve(img: Image, config_body: Option<Vec<u8>>) -> Server {
    let config_digest = sha(&img.config);
    Server::start(Arc::new(move |req: &Request| {
        if req.path == "/v2/app/manifests/v1" {
            return Reply::new(200, img.manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        }
        if let Some(d) = req.path.strip_prefix("/v2/app/blobs/") {
            if d == config_digest {
                return Reply::new(200, config_body.clone().unwrap_or(img.config.clone()));
            }
            if d == sha(&img.layer) {
                return Reply::new(200, img.layer.clone());
            }
        }
        Reply::new(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
    }))
}

fn config_gets(server: &Server, img_config: &[u8]) -> usize {
    let d = sha(img_config);
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&d))
        .count()
}

#[test]
fn a_config_declared_larger_than_the_cap_is_refused_unread() {
    for declared in [1_000_000_000_000_000u64, 4 * 1024 * 1024 + 1] {
        let img = image(Some(declared));
        let config = img.config.clone();
        let server = serve(img, None);
        let ctx = TestContext::new();
        let out = ctx
            .run(["size", &format!("{}/app:v1", server.addr())])
            .failure(1);
        assert!(
            out.stderr.starts_with("error: image config")
                && out.stderr.contains(&declared.to_string())
                && out.stderr.contains("4 MiB"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("\nhint: "), "{}", out.stderr);
        assert_eq!(config_gets(&server, &config), 0, "the config was fetched");
    }
}

/// How the slow answer misbehaves.
#[derive(Clone, Copy)]
enum Pace {
    /// Headers, then one byte every 50 ms.
    Trickle,
    /// Headers, then nothing.
    Stall,
}

/// Which answer is slow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slow {
    Manifest,
    Layer,
}

/// Writes a 200 with `body` at `pace`; false once the client has gone.
fn answer_slowly(out: &mut impl Write, headers: &str, body: &[u8], pace: Pace) -> bool {
    let head = format!(
        "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    if out.write_all(head.as_bytes()).is_err() {
        return false;
    }
    match pace {
        Pace::Trickle => body.iter().all(|b| {
            std::thread::sleep(Duration::from_millis(50));
            out.write_all(&[*b]).is_ok()
        }),
        Pace::Stall => {
            std::thread::sleep(Duration::from_secs(600));
            false
        }
    }
}

/// A registry serving `img` as `app:v1` whose `slow` answer comes at `pace`;
/// counts the GETs of that answer.
fn slow_registry(img: Image, slow: Slow, pace: Pace) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let img = Arc::new(img);
    let slow_gets = Arc::new(AtomicUsize::new(0));
    let gets = slow_gets.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (img, gets) = (img.clone(), gets.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                while let Some(head) = read_head(&mut reader) {
                    let path = head.target.as_str();
                    let (headers, body, which) = if path == "/v2/app/manifests/v1" {
                        (
                            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                            &img.manifest,
                            Some(Slow::Manifest),
                        )
                    } else if path.ends_with(&sha(&img.config)) {
                        ("", &img.config, None)
                    } else if path.ends_with(&sha(&img.layer)) {
                        ("", &img.layer, Some(Slow::Layer))
                    } else {
                        if !write_response(&mut out, 404, &[], b"{}") {
                            return;
                        }
                        continue;
                    };
                    let ok = if which == Some(slow) {
                        gets.fetch_add(1, Ordering::SeqCst);
                        answer_slowly(&mut out, headers, body, pace)
                    } else {
                        let h: Vec<(String, String)> = headers
                            .split_once(": ")
                            .map(|(k, v)| (k.to_string(), v.trim_end().to_string()))
                            .into_iter()
                            .collect();
                        write_response(&mut out, 200, &h, body)
                    };
                    if !ok {
                        return;
                    }
                }
            });
        }
    });
    (addr, slow_gets)
}

/// `size` of `addr`'s image with a limit of 1000 bytes/s over 300 ms (the trickle
/// sends 20 bytes/s): it must fail (exit 1) naming the limit.
fn size_below_the_speed_limit(ctx: &TestContext, addr: &str) -> crate::support::Output {
    let out = crate::support::Output::of(
        ctx.cmd(["size", &format!("{addr}/app:v1")])
            .env("OCIBENCH_LOW_SPEED_LIMIT", "1000")
            .env("OCIBENCH_LOW_SPEED_TIME", "300ms"),
    )
    .failure(1);
    assert!(
        out.stderr.contains("fewer than 1000 bytes/s"),
        "{}",
        out.stderr
    );
    out
}

#[test]
fn a_blob_below_the_low_speed_limit_is_abandoned_and_retried() {
    let (addr, layer_gets) = slow_registry(image(None), Slow::Layer, Pace::Trickle);
    let ctx = TestContext::new();
    let out = size_below_the_speed_limit(&ctx, &addr);
    assert!(out.stderr.contains("\nhint: "), "{}", out.stderr);
    assert_eq!(
        layer_gets.load(Ordering::SeqCst),
        3,
        "each attempt abandoned, then retried like a broken connection"
    );
    let left = listing(&ctx.cache_dir.join("blobs/sha256"));
    assert!(
        left.iter().all(|n| !n.starts_with(".tmp")),
        "partial blob left: {left:?}"
    );
}

#[test]
fn timeout_ends_a_pull_from_a_stalled_registry() {
    let (addr, _) = slow_registry(image(None), Slow::Layer, Pace::Stall);
    let ctx = TestContext::new();
    let out = crate::support::Output::of(
        ctx.cmd(["pull", "--timeout", "1s", &format!("{addr}/app:v1")])
            // The low-speed limit off: only the overall timeout can end this.
            .env("OCIBENCH_LOW_SPEED_LIMIT", "0"),
    )
    .failure(1);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}

#[test]
fn a_manifest_below_the_low_speed_limit_is_abandoned_and_retried() {
    let (addr, manifest_gets) = slow_registry(image(None), Slow::Manifest, Pace::Trickle);
    let ctx = TestContext::new();
    size_below_the_speed_limit(&ctx, &addr);
    assert!(
        manifest_gets.load(Ordering::SeqCst) > 1,
        "abandoned, then retried like a broken connection"
    );
}
