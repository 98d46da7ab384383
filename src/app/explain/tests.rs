//! The hints and exit statuses of the library's errors. The errors are made by
//! the library's own calls where that is cheap; the assertions moved here from
//! the library's tests when the hints left the library.

use std::path::PathBuf;

use ocibench::oci::registry::credentials::parse_creds;

use super::*;

const SECRET: &str = "s3cr3t:with:colons";

#[test]
fn creds_flag_errors_are_usage_with_a_hint() {
    let e = parse_creds("justapassword", "--creds").unwrap_err();
    assert_eq!(e.exit_kind(), ExitKind::Usage);
    let e = parse_creds(":hunter2", "--creds").unwrap_err();
    assert!(e.hint().unwrap().contains("--creds USER:PASSWORD"));
}

#[test]
fn missing_auth_file_hint() {
    let e = CredentialError::MissingAuthFile {
        path: "/nonexistent/auth.json".into(),
    };
    assert!(e.hint().unwrap().contains("unset REGISTRY_AUTH_FILE"));
}

/// The hint of every error a malformed credential file gives (the library's
/// `file_errors_name_file_and_key_never_the_value` makes them from real files).
#[test]
fn bad_file_hints() {
    let path = PathBuf::from("/run/containers/0/auth.json");
    let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
    for e in [
        CredentialError::Json {
            path: path.clone(),
            source: json,
        },
        CredentialError::Shape {
            path: path.clone(),
            field: "auths".into(),
            expected: "an object",
        },
        CredentialError::BadAuth {
            path: path.clone(),
            key: "r.example".into(),
            reason: "not base64".into(),
        },
    ] {
        assert_eq!(e.exit_kind(), ExitKind::Usage);
        let hint = e.hint().unwrap();
        assert!(hint.contains("fix or remove"), "{hint}");
        assert!(!hint.contains(SECRET), "{hint}");
    }
}

#[test]
fn bad_ports_are_usage() {
    use ocibench::oci::image_config::{ConfigEdit, edit_config};
    let base = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    for p in [
        "0", "65536", "http", "", "80/icmp", "-1", "8080/", "/tcp", "80-90", " 80",
    ] {
        let e = ConfigEdit {
            expose: vec![p.into()],
            ..ConfigEdit::default()
        };
        let err = edit_config(base, &e, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::BadPort { .. }), "{p}: {err}");
        assert_eq!(err.exit_kind(), ExitKind::Usage);
    }
}

#[test]
fn fd_limit_hint_names_c() {
    let err = LoadError::FileLimit {
        needed: 30_000,
        hard: 20_000,
    };
    assert!(err.hint().unwrap().contains("lower -c"));
}

/// Moved from tests/credentials_helpers.rs with the hints: the errors the real
/// helper scripts produce there, made directly.
#[test]
fn helper_failure_hints() {
    let e = CredentialError::HelperFailed {
        helper: "docker-credential-test".into(),
        server: "r.example".into(),
        status: "exit status: 2".into(),
        message: format!("answered {SECRET}"),
    };
    assert_eq!(e.exit_kind(), ExitKind::Runtime);
    assert!(e.hint().unwrap().contains("--creds"), "{:?}", e.hint());
    assert!(!e.hint().unwrap().contains(SECRET));

    let cfg = PathBuf::from("/home/u/.docker/config.json");
    let e = CredentialError::HelperNotFound {
        helper: "docker-credential-desktop".into(),
        config: cfg.clone(),
        field: "credsStore",
    };
    assert_eq!(
        e.hint().unwrap(),
        format!(
            "install docker-credential-desktop, or remove `credsStore` from {}",
            cfg.display()
        )
    );
    let e = CredentialError::HelperNotFound {
        helper: "docker-credential-gone".into(),
        config: cfg,
        field: "credHelpers",
    };
    assert!(
        e.hint().unwrap().contains("remove `credHelpers`"),
        "{:?}",
        e.hint()
    );
}

/// Moved from tests/runner_lib.rs: a wrong port's NotReady names --port.
#[test]
fn not_ready_hint_names_port() {
    let err = RunnerError::NotReady(Box::new(ocibench::runner::ContainerFailure {
        name: "ocibench-x".into(),
        state: "is running".into(),
        exit_code: None,
        url: "http://127.0.0.1:1/".into(),
        timeout: std::time::Duration::from_secs(2),
        last_probe: "connection refused".into(),
        logs: Default::default(),
    }));
    let hint = err.hint().unwrap();
    assert!(hint.contains("--port"), "{hint}");
}
