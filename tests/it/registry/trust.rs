//! The registry client's trust boundaries, against in-process registries that try to
//! lure credentials away: an upload `Location` on another origin (S3-style upload
//! URLs are real, and must get the blob but never the registry's `Authorization`),
//! and `--creds` meant for one registry offered to another.

use std::sync::Arc;

use base64::Engine as _;

use ocibench::oci::push::{LayoutBlobs, PushOptions, push};
use ocibench::oci::reference::ImageReference;
use ocibench::oci::registry::auth::{Credential, Secret};
use ocibench::oci::registry::{CredentialProvider, ProvidedCredential, RegistryClient};
use ocibench::progress::NoProgress;

use crate::support::http_server::{Reply, Request, Server};
use crate::support::{Output, TestContext, Variant, fixture_layout};

const USER: &str = "alice";
const PASSWORD: &str = "pr1vate-Pa55";

fn basic() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {b64}")
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    out.assert_hides(&[PASSWORD, &basic()[6..]]);
}

/// Where the fake registry sends an upload session.
#[derive(Clone, Copy)]
enum Lure {
    /// The POST answers `Location` on another origin: the PUT goes there.
    PostLocation,
    /// The POST stays home, a PATCH answers a foreign `Location`: the final PUT goes there.
    PatchLocation,
}

/// A push-only registry on loopback that wants Basic `alice:pr1vate-Pa55` (401 with
/// `WWW-Authenticate: Basic` otherwise), has no blobs, and opens upload sessions
/// whose `Location` leads to `foreign` as `lure` says.
fn luring_registry(foreign: String, lure: Lure) -> Server {
    let expected = basic();
    Server::start(Arc::new(move |req: &Request| {
        if req.header("authorization") != Some(expected.as_str()) {
            return Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
                .header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        let path = req.path.split('?').next().unwrap_or("");
        match (req.method.as_str(), path) {
            ("HEAD", p) if p.contains("/blobs/") => Reply::new(404, ""),
            ("POST", "/v2/app/blobs/uploads/") => {
                let location = match lure {
                    Lure::PostLocation => format!("{foreign}/upload/session-1?sig=s3cr3t"),
                    Lure::PatchLocation => "/v2/app/blobs/uploads/home-1".to_string(),
                };
                Reply::new(202, "").header("Location", &location)
            }
            ("PATCH", "/v2/app/blobs/uploads/home-1") => Reply::new(202, "").header(
                "Location",
                &format!("{foreign}/upload/session-2?sig=s3cr3t"),
            ),
            // A blob of one chunk or less is PUT where the POST said.
            ("PUT", "/v2/app/blobs/uploads/home-1") => Reply::new(201, ""),
            ("PUT", p) if p.starts_with("/v2/app/manifests/") => Reply::new(201, ""),
            _ => Reply::new(404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#),
        }
    }))
}

/// The other origin: accepts any PATCH/PUT of an upload.
fn upload_sink() -> Server {
    sink_answering_put(201)
}

fn sink_answering_put(status: u16) -> Server {
    Server::start(Arc::new(move |req: &Request| match req.method.as_str() {
        "PATCH" => Reply::new(202, "").header("Location", &req.path),
        "PUT" => Reply::new(status, ""),
        _ => Reply::new(405, ""),
    }))
}

/// `ocibench push` of the fixture layout to a registry luring its upload away.
fn push_through(lure: Lure) -> (Output, Server) {
    let sink = upload_sink();
    let registry = luring_registry(format!("http://{}", sink.addr()), lure);
    let ctx = TestContext::new();
    let out = ctx.run([
        "push",
        &fixture_layout(Variant::Oci).oci_ref(),
        &format!("docker://{}/app:v1", registry.addr()),
        "--creds",
        &format!("{USER}:{PASSWORD}"),
    ]);
    (out, sink)
}

/// Every request `sink` got carried no `Authorization` and kept its query.
#[track_caller]
fn assert_no_authorization(sink: &Server) {
    let seen = sink.requests();
    assert!(
        seen.iter().any(|r| r.method == "PUT"),
        "the upload PUT went to the Location given: {seen:?}"
    );
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            None,
            "the registry's Authorization went to another origin: {} {}",
            r.method,
            r.path
        );
        assert!(r.path.contains("sig=s3cr3t"), "query kept: {}", r.path);
    }
}

#[test]
fn upload_location_on_another_origin_gets_the_blob_but_not_the_credentials() {
    let (out, sink) = push_through(Lure::PostLocation);
    assert_no_secret(&out);
    out.success();
    assert_no_authorization(&sink);
}

#[test]
fn a_patch_answering_a_foreign_location_does_not_carry_the_credentials_there() {
    // Chunked upload through the library: a chunk small enough for the fixture's layer.
    let sink = upload_sink();
    let registry = luring_registry(format!("http://{}", sink.addr()), Lure::PatchLocation);
    let layout = fixture_layout(Variant::Oci);
    let provider: CredentialProvider = Arc::new(|_, _| {
        Ok(Some(ProvidedCredential {
            credential: Credential::Basic {
                username: USER.into(),
                password: Secret::new(PASSWORD),
            },
            source: "test".into(),
        }))
    });
    let client = RegistryClient::builder().credentials(provider).build();
    let target: ImageReference = format!("{}/app:v1", registry.addr()).parse().unwrap();
    push(
        &LayoutBlobs::new(&layout.dir),
        &client,
        &layout.image.manifest_digest.parse().unwrap(),
        &layout.image.media_type,
        &target,
        &PushOptions {
            chunk_bytes: 1024,
            ..PushOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        registry.requests().iter().any(|r| r.method == "PATCH"),
        "a chunked upload"
    );
    assert_no_authorization(&sink);
}

#[test]
fn a_failed_upload_names_the_url_without_its_signature() {
    // A pre-signed upload URL's query is a credential of its own.
    let sink = sink_answering_put(400);
    let registry = luring_registry(format!("http://{}", sink.addr()), Lure::PostLocation);
    let ctx = TestContext::new();
    let out = ctx.run([
        "push",
        &fixture_layout(Variant::Oci).oci_ref(),
        &format!("docker://{}/app:v1", registry.addr()),
        "--creds",
        &format!("{USER}:{PASSWORD}"),
    ]);
    assert_no_secret(&out);
    let out = out.failure(1);
    assert!(out.stderr.contains(sink.addr()), "{}", out.stderr);
    out.assert_hides(&["s3cr3t"]);
}
