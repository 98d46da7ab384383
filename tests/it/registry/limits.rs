//! Limits a hostile or broken registry cannot push ocibench past: an image config
//! declared (or served) larger than the cap is refused before it is read into
//! memory.

use std::io::Write;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::support::TestContext;
use crate::support::http_server::{Reply, Request, Server};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A one-layer image whose manifest says the config has `config_size` bytes.
struct Image {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

fn image(config_size: Option<u64>) -> Image {
    let mut tar = tar::Builder::new(Vec::new());
    let data = b"limits\n".repeat(50);
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "f.txt", &data[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha(&tar)
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        sha(&config),
        config_size.unwrap_or(config.len() as u64),
        sha(&layer),
        layer.len()
    )
    .into_bytes();
    Image {
        manifest,
        config,
        layer,
    }
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
