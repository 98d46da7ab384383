//! Credential helpers for real: small `docker-credential-*` shell scripts in a
//! temp dir, found through a `PATH` given to the store (never the process's,
//! as tests run in parallel). Each script appends what it read on stdin to a
//! log, so the tests see the server URL it was asked about and how often.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use ocibench::oci::registry::auth::{Credential, Secret};
use ocibench::oci::registry::credentials::{
    CredentialError, CredentialSource, CredentialStore, ResolvedCredential,
};

const SECRET: &str = "Sup3rS3cret:value";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        Fixture { dir }
    }

    /// Installs `docker-credential-NAME`: logs stdin, then runs `body`.
    fn helper(&self, name: &str, body: &str) {
        let path = self
            .dir
            .path()
            .join("bin")
            .join(format!("docker-credential-{name}"));
        let log = self.log_path(name);
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || {{ echo \"unexpected verb $1\" >&2; exit 9; }}\ncat >> '{}'\necho >> '{}'\n{body}\n",
            log.display(),
            log.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.stdin"))
    }

    /// What the helper was sent, one line per run.
    fn asked(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_path(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn config(&self, file: &str, json: &str) -> PathBuf {
        let p = self.dir.path().join(file);
        std::fs::write(&p, json).unwrap();
        p
    }

    fn store(&self, files: Vec<PathBuf>) -> CredentialStore {
        let path = format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display());
        CredentialStore::with_files(Vec::new(), files, Some(path.into()))
    }
}

fn answer(server: &str, user: &str) -> String {
    format!(r#"echo '{{"ServerURL":"{server}","Username":"{user}","Secret":"{SECRET}"}}'"#)
}

fn basic(user: &str) -> Credential {
    Credential::Basic {
        username: user.into(),
        password: Secret::new(SECRET),
    }
}

fn assert_no_secret(printed: &str) {
    for leak in [SECRET, "Sup3rS3cret"] {
        assert!(!printed.contains(leak), "secret printed: {printed}");
    }
}

/// Everything a user or a log could see of an error (its hint is the binary's:
/// `app::explain` tests that no hint holds the helper's answer).
fn shown(e: &CredentialError) -> String {
    let mut s = format!("{e} | {e:?}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(" | {c}"));
        cause = c.source();
    }
    s
}

#[test]
fn creds_store_answers_user_and_password_once_per_registry() {
    let fx = Fixture::new();
    fx.helper("test", &answer("localhost:5000", "bot"));
    let cfg = fx.config(
        "config.json",
        r#"{"auths":{"localhost:5000":{}},"credsStore":"test"}"#,
    );
    let s = fx.store(vec![cfg.clone()]);
    let r = s.resolve("localhost:5000", None).unwrap().unwrap();
    assert_eq!(
        r,
        ResolvedCredential {
            credential: basic("bot"),
            source: CredentialSource::Helper {
                helper: "docker-credential-test".into(),
                config: cfg.clone()
            }
        }
    );
    assert_eq!(
        r.source.to_string(),
        format!("docker-credential-test (named in {})", cfg.display())
    );
    assert_no_secret(&format!("{r:?} {} {s:?}", r.source));
    s.resolve("localhost:5000", None).unwrap();
    assert_eq!(fx.asked("test"), ["localhost:5000"]); // cached after one run
    s.resolve("[::1]:5000", None).unwrap();
    assert_eq!(fx.asked("test"), ["localhost:5000", "[::1]:5000"]);
}

#[test]
fn docker_hub_is_asked_as_index_docker_io_v1() {
    let fx = Fixture::new();
    fx.helper("hub", &answer("https://index.docker.io/v1/", "hubuser"));
    let cfg = fx.config(
        "config.json",
        r#"{"credHelpers":{"https://index.docker.io/v1/":"hub","ghcr.io":"absent"}}"#,
    );
    let s = fx.store(vec![cfg]);
    for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
        let r = s.resolve(name, Some("library/python")).unwrap().unwrap();
        assert_eq!(r.credential, basic("hubuser"), "{name}");
    }
    // Aliases share one cache entry: the helper ran once, asked Docker's URL.
    assert_eq!(fx.asked("hub"), ["https://index.docker.io/v1/"]);
    // A registry the helpers do not name is anonymous.
    assert_eq!(s.resolve("quay.io", None).unwrap(), None);
}

#[test]
fn token_username_means_identity_token() {
    let fx = Fixture::new();
    fx.helper("test", &answer("ghcr.io", "<token>"));
    let cfg = fx.config("config.json", r#"{"credHelpers":{"ghcr.io":"test"}}"#);
    let r = fx
        .store(vec![cfg])
        .resolve("ghcr.io", None)
        .unwrap()
        .unwrap();
    assert_eq!(r.credential, Credential::IdentityToken(Secret::new(SECRET)));
    assert_eq!(fx.asked("test"), ["ghcr.io"]);
    assert_no_secret(&format!("{r:?}"));
}

#[test]
fn credentials_not_found_falls_through() {
    let fx = Fixture::new();
    fx.helper(
        "test",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    let high = fx.config("auth.json", r#"{"credsStore":"test"}"#);
    let low = fx.config(
        "config.json",
        r#"{"auths":{"https://r.example/v1/":{"auth":"bG93OnB3"}}}"#,
    );
    let s = fx.store(vec![high.clone(), low.clone()]);
    let r = s.resolve("r.example", None).unwrap().unwrap();
    assert_eq!(
        r.credential,
        Credential::Basic {
            username: "low".into(),
            password: Secret::new("pw")
        }
    );
    assert_eq!(
        r.source,
        CredentialSource::AuthFile {
            path: low,
            key: "https://r.example/v1/".into()
        }
    );
    // Nobody has an entry: anonymous, without error.
    let s = Arc::new(fx.store(vec![high]));
    assert_eq!(s.resolve("other.example", None).unwrap(), None);
    assert!(
        s.clone().provider()("third.example", "x")
            .unwrap()
            .is_none()
    );
}

#[test]
fn failing_helper_is_an_error_with_its_stderr() {
    let fx = Fixture::new();
    fx.helper(
        "test",
        "echo '  gpg: decryption failed: No secret key  ' >&2; exit 2",
    );
    let cfg = fx.config("config.json", r#"{"credHelpers":{"r.example":"test"}}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "docker-credential-test get for r.example failed (exit status: 2): gpg: decryption failed: No secret key"
    );
    // Its hint and exit status: app::explain::tests::helper_failure_hints.

    // docker-credential-helpers print their errors on stdout.
    fx.helper(
        "stdout",
        "echo 'error getting credentials - err: exit status 1'; exit 1",
    );
    let cfg = fx.config("stdout.json", r#"{"credsStore":"stdout"}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(
        e.to_string()
            .ends_with(": error getting credentials - err: exit status 1"),
        "{e}"
    );

    // An answer with a secret, then a failure: the answer is not echoed.
    fx.helper("leaky", &format!("{}; exit 1", answer("r.example", "u")));
    let cfg = fx.config("leaky.json", r#"{"credsStore":"leaky"}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(matches!(e, CredentialError::HelperFailed { .. }), "{e}");
    assert_no_secret(&shown(&e));
}

#[test]
fn absent_helper_is_an_error_naming_it() {
    let fx = Fixture::new();
    let cfg = fx.config(
        "config.json",
        r#"{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"desktop"}"#,
    );
    let s = Arc::new(fx.store(vec![cfg.clone()]));
    let e = s.resolve("docker.io", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "docker-credential-desktop not found in PATH (named in {})",
            cfg.display()
        )
    );
    assert!(
        matches!(
            &e,
            CredentialError::HelperNotFound {
                field: "credsStore",
                ..
            }
        ),
        "{e:?}"
    ); // its hint: app::explain::tests::helper_failure_hints
    // Through the provider: the same error, for the registry client to report.
    let err = s.clone().provider()("docker.io", "library/x").unwrap_err();
    assert!(matches!(
        err.downcast_ref::<CredentialError>(),
        Some(CredentialError::HelperNotFound { .. })
    ));

    // A credHelpers entry names its field in the hint; a path is no helper name.
    let cfg = fx.config("helpers.json", r#"{"credHelpers":{"r.example":"gone"}}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(
        matches!(
            &e,
            CredentialError::HelperNotFound {
                field: "credHelpers",
                ..
            }
        ),
        "{e:?}"
    ); // its hint: app::explain::tests::helper_failure_hints
    let cfg = fx.config("evil.json", r#"{"credsStore":"../../bin/sh"}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(matches!(e, CredentialError::BadHelperName { .. }), "{e}");
}

#[test]
fn helper_lookup_order_within_a_file() {
    let fx = Fixture::new();
    fx.helper("specific", &answer("r.example", "from-credhelpers"));
    fx.helper("store", &answer("r.example", "from-credsstore"));
    let cfg = fx.config(
        "config.json",
        r#"{"auths":{"r.example":{"auth":"YXV0aHM6cHc="},"s.example":{"auth":"YXV0aHM6cHc="},"t.example":{}},
            "credHelpers":{"r.example":"specific"},"credsStore":"store"}"#,
    );
    let s = fx.store(vec![cfg]);
    let user = |reg: &str| match s.resolve(reg, None).unwrap().unwrap().credential {
        Credential::Basic { username, .. } => username,
        c => panic!("{c:?}"),
    };
    assert_eq!(user("r.example"), "from-credhelpers"); // credHelpers first
    assert_eq!(user("s.example"), "auths"); // then an auths entry with credentials
    assert_eq!(user("t.example"), "from-credsstore"); // `{}` placeholders defer to the store
    assert_eq!(fx.asked("store"), ["t.example"]);
}

#[test]
fn malformed_answers_are_errors_without_the_secret() {
    let fx = Fixture::new();
    fx.helper("test", &format!("echo 'user=u secret={SECRET}'"));
    let cfg = fx.config("config.json", r#"{"credsStore":"test"}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(matches!(e, CredentialError::HelperOutput { .. }), "{e}");
    assert_no_secret(&shown(&e));

    fx.helper(
        "nouser",
        &format!(r#"echo '{{"Username":"","Secret":"{SECRET}"}}'"#),
    );
    let cfg = fx.config("nouser.json", r#"{"credsStore":"nouser"}"#);
    let e = fx.store(vec![cfg]).resolve("r.example", None).unwrap_err();
    assert!(
        e.to_string().contains("a secret without a user name"),
        "{e}"
    );
    assert_no_secret(&shown(&e));

    // An empty secret is no entry.
    fx.helper("empty", r#"echo '{"Username":"u","Secret":""}'"#);
    let cfg = fx.config("empty.json", r#"{"credsStore":"empty"}"#);
    assert_eq!(
        fx.store(vec![cfg]).resolve("r.example", None).unwrap(),
        None
    );
}

#[test]
fn flag_wins_without_running_helpers() {
    let fx = Fixture::new();
    fx.helper("test", &answer("r.example", "helper"));
    let cfg = fx.config("config.json", r#"{"credsStore":"test"}"#);
    let flag =
        ocibench::oci::registry::credentials::parse_creds(&format!("cli:{SECRET}"), "--creds")
            .unwrap();
    let path = format!("{}:/usr/bin:/bin", fx.dir.path().join("bin").display());
    let s = Arc::new(CredentialStore::with_files(
        vec![flag.scoped("r.example", None)],
        vec![cfg],
        Some(path.into()),
    ));
    let got = s.clone().provider()("r.example", "x").unwrap().unwrap();
    assert_eq!(got.credential, basic("cli"));
    assert_eq!(got.source, "--creds");
    assert!(fx.asked("test").is_empty());
    assert_no_secret(&format!("{s:?}"));
}

#[test]
fn helper_path_is_the_given_path_only() {
    let fx = Fixture::new();
    fx.helper("test", &answer("r.example", "u"));
    let cfg = fx.config("config.json", r#"{"credsStore":"test"}"#);
    // Without PATH, or with only an empty (current directory) entry, nothing is found.
    for path in [None, Some("")] {
        let s = CredentialStore::with_files(Vec::new(), vec![cfg.clone()], path.map(Into::into));
        let e = s.resolve("r.example", None).unwrap_err();
        assert!(
            matches!(e, CredentialError::HelperNotFound { .. }),
            "{path:?}: {e}"
        );
    }
}
