//! The local registry against ureq: byte-exact content with the distribution
//! headers, HEAD, 404s with error bodies, pacing, and shutdown on drop.

use std::time::{Duration, Instant};

use super::*;
use crate::oci::manifest::{Descriptor, ImageIndex, ImageManifest, MediaFamily, OCI_INDEX};

struct Fixture {
    _dir: tempfile::TempDir,
    store: BlobStore,
    image: ServedImage,
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

/// An image of one config and one `layer_len`-byte layer (not real gzip: the
/// server does not look inside layers).
fn fixture(layer_len: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer: Vec<u8> = (0..layer_len).map(|i| (i * 7 % 251) as u8).collect();
    let family = MediaFamily::Oci;
    let config_digest = store.put_bytes(&config).unwrap();
    let layer_digest = store.put_bytes(&layer).unwrap();
    let manifest = ImageManifest::new(
        family,
        Descriptor::new(family.config(), config_digest, config.len() as u64),
        vec![Descriptor::new(
            family.layer_gzip(),
            layer_digest,
            layer.len() as u64,
        )],
    )
    .to_bytes();
    let digest = store.put_bytes(&manifest).unwrap();
    Fixture {
        _dir: dir,
        store,
        image: ServedImage {
            repository: "ocibench/cold/a1".into(),
            manifest: digest,
            media_type: family.manifest().into(),
        },
        config,
        layer,
        manifest,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn url(reg: &LocalRegistry, path: &str) -> String {
    format!("http://{}{path}", reg.host())
}

fn get(reg: &LocalRegistry, path: &str) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut resp = agent().get(&url(reg, path)).call().unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        .to_str()
        .unwrap()
}

fn start(fx: &Fixture, bandwidth: Option<u64>) -> LocalRegistry {
    LocalRegistry::start(
        &fx.store,
        std::slice::from_ref(&fx.image),
        ServeOptions { bandwidth },
    )
    .unwrap()
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}

#[test]
fn ping_and_reference() {
    let fx = fixture(10);
    let reg = start(&fx, None);
    assert!(reg.host().starts_with("127.0.0.1:"), "{}", reg.host());
    assert_eq!(
        reg.reference(&fx.image),
        format!("{}/ocibench/cold/a1@{}", reg.host(), fx.image.manifest)
    );
    let (status, headers, _) = get(&reg, "/v2/");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[test]
fn serves_the_manifest_and_blobs_byte_exact() {
    let fx = fixture(300_000);
    let reg = start(&fx, None);
    let repo = &fx.image.repository;

    let (status, headers, body) = get(&reg, &format!("/v2/{repo}/manifests/{}", fx.image.manifest));
    assert_eq!(status, 200);
    assert_eq!(body, fx.manifest);
    assert_eq!(header(&headers, "content-type"), fx.image.media_type);
    assert_eq!(
        header(&headers, "docker-content-digest"),
        fx.image.manifest.to_string()
    );
    assert_eq!(
        header(&headers, "content-length"),
        fx.manifest.len().to_string()
    );

    for (bytes, media_type) in [
        (&fx.config, MediaFamily::Oci.config()),
        (&fx.layer, MediaFamily::Oci.layer_gzip()),
    ] {
        let digest = digest_of(bytes);
        let (status, headers, body) = get(&reg, &format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(status, 200);
        assert!(body == *bytes, "blob {digest} differs");
        assert_eq!(header(&headers, "content-length"), bytes.len().to_string());
        assert_eq!(
            header(&headers, "docker-content-digest"),
            digest.to_string()
        );
        assert_eq!(header(&headers, "content-type"), media_type);
    }

    // The tag "latest" names the repository's image.
    let (status, _, body) = get(&reg, &format!("/v2/{repo}/manifests/latest"));
    assert_eq!((status, body), (200, fx.manifest.clone()));
    let (status, _, body) = get(&reg, &format!("/v2/{repo}/tags/list"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(json, serde_json::json!({"name": repo, "tags": ["latest"]}));
}

#[test]
fn head_gives_headers_without_body() {
    let fx = fixture(100_000);
    let reg = start(&fx, None);
    let layer = digest_of(&fx.layer);
    for (path, len) in [
        (
            format!(
                "/v2/{}/manifests/{}",
                fx.image.repository, fx.image.manifest
            ),
            fx.manifest.len(),
        ),
        (
            format!("/v2/{}/blobs/{layer}", fx.image.repository),
            fx.layer.len(),
        ),
    ] {
        let mut resp = agent().head(&url(&reg, &path)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(header(resp.headers(), "content-length"), len.to_string());
        assert!(resp.headers().contains_key("docker-content-digest"));
        assert!(resp.body_mut().read_to_vec().unwrap().is_empty());
    }
}

fn error_code(reg: &LocalRegistry, path: &str) -> (u16, String) {
    let (status, headers, body) = get(reg, path);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let code = json["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code)
}

#[test]
fn unknown_foreign_and_unlisted_digests_are_404_with_error_bodies() {
    let fx = fixture(10);
    // In the store but not part of the image.
    let stray = fx.store.put_bytes(b"not part of the image").unwrap();
    let reg = start(&fx, None);
    let repo = &fx.image.repository;
    let unknown = digest_of(b"nowhere");
    let layer = digest_of(&fx.layer);
    let cases = [
        (
            format!("/v2/{repo}/manifests/{unknown}"),
            "MANIFEST_UNKNOWN",
        ),
        (format!("/v2/{repo}/blobs/{unknown}"), "BLOB_UNKNOWN"),
        (format!("/v2/{repo}/blobs/{stray}"), "BLOB_UNKNOWN"),
        (format!("/v2/{repo}/manifests/{stray}"), "MANIFEST_UNKNOWN"),
        // A layer is not a manifest.
        (format!("/v2/{repo}/manifests/{layer}"), "MANIFEST_UNKNOWN"),
        (format!("/v2/{repo}/manifests/v1"), "MANIFEST_UNKNOWN"),
        (format!("/v2/{repo}/blobs/not-a-digest"), "BLOB_UNKNOWN"),
        (format!("/v2/other/repo/blobs/{layer}"), "NAME_UNKNOWN"),
        (
            format!("/v2/other/manifests/{}", fx.image.manifest),
            "NAME_UNKNOWN",
        ),
    ];
    for (path, code) in cases {
        assert_eq!(error_code(&reg, &path), (404, code.to_string()), "{path}");
    }
    assert_eq!(error_code(&reg, "/v2/_catalog").0, 404);
    let resp = agent()
        .post(&url(&reg, &format!("/v2/{repo}/blobs/uploads/")))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
}

#[test]
fn an_image_is_served_only_under_its_repository() {
    let a = fixture(10);
    let b = fixture(20);
    // b's blobs in a's store, served under another repository.
    for bytes in [&b.layer, &b.manifest] {
        a.store.put_bytes(bytes).unwrap();
    }
    let b_image = ServedImage {
        repository: "ocibench/cold/b".into(),
        ..b.image.clone()
    };
    let reg = LocalRegistry::start(
        &a.store,
        &[a.image.clone(), b_image.clone()],
        ServeOptions::default(),
    )
    .unwrap();
    let b_layer = digest_of(&b.layer);
    assert_eq!(
        get(&reg, &format!("/v2/ocibench/cold/b/blobs/{b_layer}")).0,
        200
    );
    assert_eq!(
        error_code(&reg, &format!("/v2/{}/blobs/{b_layer}", a.image.repository)),
        (404, "BLOB_UNKNOWN".into())
    );
}

#[test]
fn an_index_serves_its_children() {
    let fx = fixture(10);
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        artifact_type: None,
        subject: None,
        manifests: vec![Descriptor::new(
            fx.image.media_type.clone(),
            fx.image.manifest.clone(),
            fx.manifest.len() as u64,
        )],
        annotations: None,
    };
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = fx.store.put_bytes(&bytes).unwrap();
    let image = ServedImage {
        repository: "idx".into(),
        manifest: digest.clone(),
        media_type: OCI_INDEX.into(),
    };
    let reg = LocalRegistry::start(
        &fx.store,
        std::slice::from_ref(&image),
        ServeOptions::default(),
    )
    .unwrap();
    let (status, headers, body) = get(&reg, &format!("/v2/idx/manifests/{digest}"));
    assert_eq!((status, body), (200, bytes));
    assert_eq!(header(&headers, "content-type"), OCI_INDEX);
    let (status, _, body) = get(&reg, &format!("/v2/idx/manifests/{}", fx.image.manifest));
    assert_eq!((status, body), (200, fx.manifest.clone()));
    assert_eq!(
        get(&reg, &format!("/v2/idx/blobs/{}", digest_of(&fx.layer))).0,
        200
    );
}

#[test]
fn a_blob_missing_at_start_is_an_error() {
    let fx = fixture(10);
    let layer = digest_of(&fx.layer);
    std::fs::remove_file(fx.store.blob_path(&layer)).unwrap();
    let err = LocalRegistry::start(
        &fx.store,
        std::slice::from_ref(&fx.image),
        ServeOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ServeError::MissingBlob { digest, .. } if *digest == layer),
        "{err:?}"
    );
    let bad = ServedImage {
        repository: "Upper/Case".into(),
        ..fx.image.clone()
    };
    assert!(matches!(
        LocalRegistry::start(&fx.store, &[bad], ServeOptions::default()),
        Err(ServeError::BadRepository(_))
    ));
}

#[test]
fn bandwidth_paces_a_transfer() {
    // 400 kB at 800 kB/s: at least half a second less the bucket's 50 ms burst
    // (asserted with slack; no upper bound).
    let fx = fixture(400_000);
    let reg = start(&fx, Some(800_000));
    let layer = digest_of(&fx.layer);
    let began = Instant::now();
    let (status, _, body) = get(&reg, &format!("/v2/{}/blobs/{layer}", fx.image.repository));
    let took = began.elapsed();
    assert_eq!(status, 200);
    assert!(body == fx.layer);
    assert!(took >= Duration::from_millis(400), "took {took:?}");
}

#[test]
fn drop_stops_the_server() {
    let fx = fixture(10);
    let reg = start(&fx, None);
    let host = reg.host().to_string();
    assert_eq!(get(&reg, "/v2/").0, 200);
    drop(reg);
    let err = std::net::TcpStream::connect(&host).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn routes() {
    assert_eq!(route("/v2/"), Route::Ping);
    assert_eq!(
        route("/v2/a/b/manifests/latest"),
        Route::Manifest {
            name: "a/b",
            reference: "latest"
        }
    );
    assert_eq!(
        route("/v2/a/blobs/x/blobs/sha256:1"),
        Route::Blob {
            name: "a/blobs/x",
            digest: "sha256:1"
        }
    );
    assert_eq!(route("/v2/a/b/tags/list"), Route::Tags { name: "a/b" });
    assert_eq!(route("/v2/a/blobs/uploads/"), Route::Other);
    assert_eq!(route("/v1/x"), Route::Other);
    assert!(valid_repository("ocibench/cold/a1"));
    assert!(valid_repository("a.b_c-d/e"));
    assert!(!valid_repository("A/b"));
    assert!(!valid_repository("a//b"));
    assert!(!valid_repository("-a"));
}
