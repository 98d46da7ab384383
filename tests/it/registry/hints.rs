//! What the `hint:` line says when a registry read goes wrong in ways that look
//! alike but need different advice: an unknown digest is not a wrong tag, a
//! registry that accepts the connection and then says nothing is not "not
//! listening", and `--platform` asked of a single-platform image of another
//! platform is an error, not a silent size report of the wrong image.

use std::io::BufReader;
use std::net::TcpListener;
use std::sync::Arc;

use crate::support::http_server::{Reply, Request, Server, read_head};
use crate::support::mock_image::{MockImage, sha};
use crate::support::{Output, TestContext};

/// A linux/amd64 image (one small layer) served as `app:v1`.
fn amd64_registry() -> Server {
    let MockImage {
        manifest,
        config,
        layer,
        ..
    } = MockImage::one_file("f.txt", b"amd64\n").build();
    Server::start(Arc::new(move |req: &Request| {
        let path = req.path.as_str();
        if path.starts_with("/v2/app/tags/list") {
            return Reply::new(200, r#"{"name":"app","tags":["v1"]}"#);
        }
        if path == "/v2/app/manifests/v1" || path == format!("/v2/app/manifests/{}", sha(&manifest))
        {
            return Reply::new(200, manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        }
        if path.ends_with(&sha(&config)) {
            return Reply::new(200, config.clone());
        }
        if path.ends_with(&sha(&layer)) {
            return Reply::new(200, layer.clone());
        }
        Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    }))
}

fn hint(out: &Output) -> &str {
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint:\n{}", out.stderr))
}

#[test]
fn an_unknown_digest_is_not_hinted_as_a_wrong_tag() {
    let reg = amd64_registry();
    let ctx = TestContext::new();
    let unknown = format!("sha256:{}", "0".repeat(64));
    let out = ctx
        .run(["size", &format!("{}/app@{unknown}", reg.addr())])
        .failure(1);
    assert!(out.stderr.contains(&unknown), "{}", out.stderr);
    let h = hint(&out);
    assert!(
        !h.contains("check the tag") && !h.contains("list-tags"),
        "{h}"
    );
    assert!(h.contains("check the digest"), "{h}");
}

#[test]
fn a_registry_that_never_answers_is_not_hinted_as_not_listening() {
    // Accepts connections and reads requests, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                while read_head(&mut reader).is_some() {}
            });
        }
    });
    let ctx = TestContext::new();
    let out = Output::of(
        ctx.cmd(["size", &format!("{addr}/app:v1")])
            .env("OCIBENCH_LOW_SPEED_TIME", "200ms"),
    )
    .failure(1);
    let h = hint(&out);
    assert!(!h.contains("listening"), "{h}");
    assert!(h.contains("did not answer"), "{h}");
}

#[test]
fn platform_asked_of_a_single_platform_image_of_another_is_an_error() {
    let reg = amd64_registry();
    let ctx = TestContext::new();
    let image = format!("{}/app:v1", reg.addr());
    let out = ctx
        .run(["size", "--platform", "linux/arm64", &image])
        .failure(1);
    assert!(
        out.stderr.contains("linux/amd64") && out.stderr.contains("linux/arm64"),
        "{}",
        out.stderr
    );
    assert!(hint(&out).contains("--platform"), "{}", out.stderr);
    // Asked for what it is, or not asked at all: fine.
    ctx.run(["size", "--platform", "linux/amd64", &image])
        .success();
}

#[test]
fn build_platform_asked_of_a_single_platform_base_of_another_is_an_error() {
    let reg = amd64_registry();
    let ctx = TestContext::new();
    let out = ctx
        .run([
            "build",
            "--from",
            &format!("{}/app:v1", reg.addr()),
            "--platform",
            "linux/arm64",
            "--output",
            &format!("oci:{}", ctx.path("out").display()),
        ])
        .failure(1);
    assert!(
        out.stderr.contains("linux/amd64") && out.stderr.contains("linux/arm64"),
        "{}",
        out.stderr
    );
    assert!(!ctx.path("out").exists(), "no output written");
}
