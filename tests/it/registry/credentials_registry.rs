//! The store wired into the registry client, against a loopback registry that
//! demands Basic auth: the password written in an auth file reaches the
//! registry, and a broken helper ends as a 401 plus a kept error to report.

use std::sync::Arc;

use base64::Engine as _;

use crate::support::http_server::{Reply, Request, Server};
use ocibench::oci::reference::ImageReference;
use ocibench::oci::registry::RegistryClient;
use ocibench::oci::registry::credentials::{CredentialError, CredentialStore};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// Serves `/v2/` and one manifest to `Authorization: Basic base64(USER:PASS)`
/// only; the server's log shows the Authorization headers it saw.
fn start_registry(user_pass: &'static str) -> (String, Server) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    );
    let server = Server::start(Arc::new(move |req: &Request| {
        let (status, ctype, body) = if req.header("authorization") != Some(expected.as_str()) {
            (
                401,
                "application/json",
                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
            )
        } else if req.path == "/v2/" {
            (200, "application/json", "{}")
        } else if req.path == "/v2/team/app/manifests/v1" {
            (200, "application/vnd.oci.image.manifest.v1+json", MANIFEST)
        } else {
            (
                404,
                "application/json",
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
            )
        };
        Reply::new(status, body)
            .header("Content-Type", ctype)
            .header("WWW-Authenticate", "Basic realm=\"mock\"")
    }));
    (server.addr().to_string(), server)
}

/// Whether any request carried an Authorization header.
fn saw_authorization(server: &Server) -> bool {
    server
        .requests()
        .iter()
        .any(|r| r.header("authorization").is_some())
}

#[test]
fn auth_file_password_reaches_the_registry() {
    let (addr, seen) = start_registry("app-bot:pa:ss");
    let dir = tempfile::tempdir().unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // podman's namespaced key for this repository beats the registry-wide one.
    let cfg = dir.path().join("auth.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"auths":{{"http://{addr}/v2/":{{"auth":"{}"}},"{addr}/team/app":{{"auth":"{}"}}}}}}"#,
            b64("wrong:pw"),
            b64("app-bot:pa:ss")
        ),
    )
    .unwrap();
    let store = Arc::new(CredentialStore::with_files(
        Vec::new(),
        vec![cfg.clone()],
        None,
    ));
    let image: ImageReference = format!("{addr}/team/app:v1").parse().unwrap();
    let client = RegistryClient::builder()
        .credentials(store.clone().provider())
        .build();
    let m = client.fetch_manifest(&image, "v1").unwrap();
    assert_eq!(m.bytes, MANIFEST.as_bytes());
    assert!(saw_authorization(&seen));

    // Another repository gets the registry-wide key, which the registry refuses;
    // the error names the file the credential came from.
    let other: ImageReference = format!("{addr}/team/other:v1").parse().unwrap();
    let err = client.fetch_manifest(&other, "v1").unwrap_err().to_string();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(!err.contains("pa:ss") && !err.contains("wrong:pw"), "{err}");
}

#[test]
fn broken_helper_is_an_error_naming_it() {
    let (addr, seen) = start_registry("u:p");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"credsStore":"not-installed"}"#).unwrap();
    let store = Arc::new(CredentialStore::with_files(Vec::new(), vec![cfg], None));
    let client = RegistryClient::builder()
        .credentials(store.clone().provider())
        .build();
    let image: ImageReference = format!("{addr}/team/app:v1").parse().unwrap();
    let err = client.fetch_manifest(&image, "v1").unwrap_err();
    assert!(!saw_authorization(&seen), "no Authorization was sent");
    let cause = std::error::Error::source(&err)
        .and_then(|c| c.downcast_ref::<CredentialError>())
        .unwrap_or_else(|| panic!("the cause is the helper's error: {err:?}"));
    assert!(matches!(cause, CredentialError::HelperNotFound { .. }));
    assert!(
        cause
            .to_string()
            .starts_with("docker-credential-not-installed not found in PATH")
    );
}
