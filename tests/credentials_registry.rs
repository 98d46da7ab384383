//! The store wired into the registry client, against a loopback registry that
//! demands Basic auth: the password written in an auth file reaches the
//! registry, and a broken helper ends as a 401 plus a kept error to report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use ocibench::oci::credentials::{CredentialError, CredentialStore};
use ocibench::oci::reference::ImageReference;
use ocibench::oci::registry::RegistryClient;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// Serves `/v2/` and one manifest to `Authorization: Basic base64(USER:PASS)`
/// only; logs the Authorization headers it sees.
fn start_registry(user_pass: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, expected) = (seen2.clone(), expected.clone());
            std::thread::spawn(move || serve(stream, &expected, &seen));
        }
    });
    (addr, seen)
}

fn serve(stream: TcpStream, expected: &str, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (mut auth, mut length) = (None, 0usize);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => auth = Some(v.trim().to_string()),
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let _ = reader
            .by_ref()
            .take(length as u64)
            .read_to_end(&mut Vec::new());
        if let Some(a) = &auth {
            seen.lock().unwrap().push(a.clone());
        }
        let (status, ctype, body) = if auth.as_deref() != Some(expected) {
            (
                401,
                "application/json",
                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
            )
        } else if path == "/v2/" {
            (200, "application/json", "{}")
        } else if path == "/v2/team/app/manifests/v1" {
            (200, "application/vnd.oci.image.manifest.v1+json", MANIFEST)
        } else {
            (
                404,
                "application/json",
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
            )
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nWWW-Authenticate: Basic realm=\"mock\"\r\n\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
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
    let store = Arc::new(CredentialStore::with_files(None, vec![cfg.clone()], None));
    let image: ImageReference = format!("{addr}/team/app:v1").parse().unwrap();
    let client = RegistryClient::builder()
        .credentials(store.clone().provider())
        .build();
    let m = client.fetch_manifest(&image, "v1").unwrap();
    assert_eq!(m.bytes, MANIFEST.as_bytes());
    assert!(!seen.lock().unwrap().is_empty());

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
    let store = Arc::new(CredentialStore::with_files(None, vec![cfg], None));
    let client = RegistryClient::builder()
        .credentials(store.clone().provider())
        .build();
    let image: ImageReference = format!("{addr}/team/app:v1").parse().unwrap();
    let err = client.fetch_manifest(&image, "v1").unwrap_err();
    assert!(seen.lock().unwrap().is_empty(), "no Authorization was sent");
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
