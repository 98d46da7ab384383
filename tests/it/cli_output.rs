//! What every command does with its output channels, whatever the command:
//! a closed stdout (`ocibench size --json IMAGE | head -c 10`) ends it quietly,
//! with the work done, as ripgrep and every Unix filter do.
//!
//! Needs only what the tiny layout needs (GNU tar, gzip) and loopback servers.

use std::process::Stdio;

use crate::support::hyper_server::{HttpServer, closed_port_url};
use crate::support::snapshot::tiny_layout;
use crate::support::{Output, TestContext};

/// `ocibench ARGS` with stdout a pipe whose reading end is already closed: the
/// first write fails with EPIPE, deterministically (unlike a real `| head`).
fn with_closed_stdout(ctx: &TestContext, args: &[&str]) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors, which we then own (std::io::pipe
    // is newer than the crate's MSRV).
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let mut cmd = ctx.cmd(args);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    Output::of(&mut cmd)
}

#[track_caller]
fn quiet_success(out: &Output) {
    assert_eq!(
        out.code(),
        Some(0),
        "a closed stdout is not a failure: {}\n{}",
        out.command,
        out.stderr
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr (no `error: Broken pipe`): {}",
        out.stderr
    );
}

#[test]
fn bench_with_a_closed_stdout_exits_quietly() {
    let server = HttpServer::ok();
    let ctx = TestContext::new();
    for json in [true, false] {
        let mut args = vec!["bench", "-n", "20", "-c", "2"];
        let url = server.url("/");
        args.push(&url);
        if json {
            args.push("--json");
        }
        quiet_success(&with_closed_stdout(&ctx, &args));
    }
}

#[test]
fn bench_with_a_closed_stdout_still_fails_when_nothing_answered() {
    let ctx = TestContext::new();
    let out = with_closed_stdout(&ctx, &["bench", &closed_port_url(), "-n", "3", "--json"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("error: every connection was refused"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Broken pipe"), "{}", out.stderr);
}

#[test]
fn size_and_pull_with_a_closed_stdout_exit_quietly() {
    let ctx = TestContext::new();
    let image = tiny_layout(&ctx.path("tiny"));
    for cmd in ["size", "pull"] {
        quiet_success(&with_closed_stdout(
            &ctx,
            &[cmd, "--json", &image.reference],
        ));
        quiet_success(&with_closed_stdout(&ctx, &[cmd, &image.reference]));
    }
}

#[test]
fn build_with_a_closed_stdout_exits_quietly_with_its_image_written() {
    let ctx = TestContext::new();
    let base = tiny_layout(&ctx.path("base"));
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hello.txt"), "hello\n").unwrap();
    let out_dir = ctx.path("out");
    let dest = format!("oci:{}:built", out_dir.display());
    let layer = format!("{}:/app", app.display());
    let out = with_closed_stdout(
        &ctx,
        &[
            "build",
            "--from",
            &base.reference,
            "--layer",
            &layer,
            "--output",
            &dest,
            "--json",
        ],
    );
    quiet_success(&out);
    // The image is complete: it reads back.
    let size = ctx.run(["size", "--json", &dest]).success().json();
    assert_eq!(size["layers"].as_array().unwrap().len(), 2, "{size:#}");
}
