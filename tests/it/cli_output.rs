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

/// A fake secret, as an auth.json or a password file would hold it.
const SECRET: &str = "hunter2-FAKE-SECRET-c2VjcmV0";

/// Files that are not what the command expects, each holding `SECRET` where a
/// parser would quote it: a credential file, /etc/passwd-like lines (longer than
/// one 512-byte tar block, so tar reads them as a header), JSON of the wrong shape.
fn secret_files(ctx: &TestContext) -> Vec<std::path::PathBuf> {
    let dir = ctx.path("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    };
    write(
        "auth.json",
        format!(r#"{{"auths":{{"registry.example":{{"auth":"{SECRET}"}}}}}}"#).into_bytes(),
    );
    let mut passwd = format!("root:{SECRET}:0:0:root:/root:/bin/bash\n");
    while passwd.len() < 2048 {
        passwd.push_str(&format!(
            "daemon:{SECRET}:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        ));
    }
    write("passwd", passwd.into_bytes());
    // Real tar archives whose JSON quotes the secret where a type is wrong.
    let tar_of = |files: &[(&str, String)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    };
    write(
        "docker-bad-manifest.tar",
        tar_of(&[(
            "manifest.json",
            format!(r#"[{{"Config":"c.json","RepoTags":["x"],"Layers":"{SECRET}"}}]"#),
        )]),
    );
    write(
        "oci-bad-index.tar",
        tar_of(&[
            (
                "oci-layout",
                r#"{"imageLayoutVersion":"1.0.0"}"#.to_string(),
            ),
            (
                "index.json",
                format!(
                    r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{SECRET}","size":1}}]}}"#
                ),
            ),
        ]),
    );
    files
}

#[test]
fn archives_that_are_not_what_they_claim_never_echo_their_contents() {
    let ctx = TestContext::new();
    let files = secret_files(&ctx);
    let out_dir = ctx.path("out");
    let dest = format!("oci:{}:x", out_dir.display());
    for file in &files {
        for transport in ["oci-archive", "docker-archive"] {
            let image = format!("{transport}:{}", file.display());
            let runs: [Vec<&str>; 4] = [
                vec!["size", &image],
                vec!["pull", "--json", &image],
                vec!["build", "--from", &image, "--output", &dest],
                vec!["push", &image, "docker://127.0.0.1:1/x:y"],
            ];
            for args in runs {
                let out = ctx.run(&args);
                assert_eq!(out.code(), Some(2), "bad input: {out:?}");
                assert!(out.stderr.starts_with("error: "), "{out:?}");
                assert!(out.stderr.contains("hint: "), "{out:?}");
                out.assert_hides(&[SECRET, "root:", "daemon:"]);
            }
        }
    }
    // The same JSON, unpacked into an OCI layout directory.
    let layout = ctx.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"sha256:{SECRET}","size":1}}]}}"#),
    )
    .unwrap();
    let out = ctx.run(["size", &format!("oci:{}", layout.display())]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("line 1"),
        "the position is given: {out:?}"
    );
    out.assert_hides(&[SECRET]);
}

#[test]
fn a_comparison_file_error_gives_its_position_not_its_text() {
    let ctx = TestContext::new();
    let file = ctx.path("ocibench.toml");
    std::fs::write(
        &file,
        format!("[app]\nport = \"{SECRET}\"\n\n[[candidate]]\nname = \"a\"\nbase = \"scratch\"\n"),
    )
    .unwrap();
    let out = ctx.run(["compare", "-f", &file.display().to_string()]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("line 2"), "{out:?}");
    out.assert_hides(&[SECRET]);
    // A syntax error on a line holding a secret: toml quotes the line by default.
    std::fs::write(&file, format!("[app]\npassword {SECRET}\n")).unwrap();
    let out = ctx.run(["compare", "-f", &file.display().to_string()]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("line 2"), "{out:?}");
    out.assert_hides(&[SECRET]);
}

#[test]
fn completions_and_man_with_a_closed_stdout_exit_quietly() {
    let ctx = TestContext::new();
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["man"],
        &["man", "pull"],
    ] {
        quiet_success(&with_closed_stdout(&ctx, args));
    }
}
