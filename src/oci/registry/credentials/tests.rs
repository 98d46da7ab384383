//! Parsing, precedence, key normalisation and redaction, on temp files only
//! (helpers are exercised by `tests/credentials_helpers.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;

use super::*;

const SECRET: &str = "s3cr3t:with:colons";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn store(files: Vec<PathBuf>) -> CredentialStore {
    CredentialStore::with_files(Vec::new(), files, None)
}

fn basic(user: &str, pass: &str) -> Credential {
    Credential::Basic {
        username: user.into(),
        password: Secret::new(pass),
    }
}

#[test]
fn creds_flag_splits_at_first_colon() {
    let f = parse_creds("me:pa:ss:", "--creds").unwrap();
    assert_eq!(f.username, "me");
    assert_eq!(f.password.expose(), "pa:ss:");
    assert_eq!(f.origin, "--creds");
    assert_eq!(parse_creds("me:", "--creds").unwrap().password.expose(), "");

    let e = parse_creds("justapassword", "--creds").unwrap_err();
    assert!(matches!(e, CredentialError::FlagWithoutColon { .. }));
    assert!(!e.to_string().contains("justapassword"), "{e}");
    let e = parse_creds(":hunter2", "--creds").unwrap_err();
    assert!(matches!(e, CredentialError::FlagEmptyUser { .. }));
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}

#[test]
fn creds_file_drops_one_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir.path().join("creds"), "bot:tok en:x\r\n");
    let f = read_creds_file(&p, format!("--creds-file {}", p.display())).unwrap();
    assert_eq!(
        (f.username.as_str(), f.password.expose()),
        ("bot", "tok en:x")
    );
    assert_eq!(f.origin, format!("--creds-file {}", p.display()));
    let p = write(&dir.path().join("bad"), "nocolon\n");
    let e = read_creds_file(&p, format!("--creds-file {}", p.display())).unwrap_err();
    assert!(e.to_string().starts_with("--creds-file "), "{e}");
    let p = write(&dir.path().join("two"), "bot:pw\nhunter2\n");
    let e = read_creds_file(&p, format!("--creds-file {}", p.display())).unwrap_err();
    assert!(matches!(e, CredentialError::FlagNotOneLine { .. }), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"));
    let e = read_creds_file(&dir.path().join("missing"), "--creds-file missing").unwrap_err();
    assert!(matches!(e, CredentialError::Read { .. }), "{e}");
}

#[test]
fn key_normalisation_table() {
    let table: &[(&str, &str, Option<&str>)] = &[
        ("https://index.docker.io/v1/", "docker.io", None),
        ("http://index.docker.io/v1/", "docker.io", None),
        ("index.docker.io", "docker.io", None),
        ("registry-1.docker.io", "docker.io", None),
        ("docker.io", "docker.io", None),
        ("Docker.IO", "docker.io", None),
        ("https://ghcr.io/v2/", "ghcr.io", None),
        ("HTTPS://ghcr.io", "ghcr.io", None),
        ("ghcr.io", "ghcr.io", None),
        ("localhost:5000", "localhost:5000", None),
        ("http://localhost:5000/v2/", "localhost:5000", None),
        ("[::1]:5000", "[::1]:5000", None),
        ("quay.io/org/repo", "quay.io", Some("org/repo")),
        ("quay.io/org/", "quay.io", Some("org")),
        (
            "docker.io/library/python",
            "docker.io",
            Some("library/python"),
        ),
    ];
    for (key, registry, path) in table {
        assert_eq!(
            normalize_key(key),
            (registry.to_string(), path.map(str::to_string)),
            "{key}"
        );
    }
    assert_eq!(helper_server_url("docker.io"), DOCKER_HUB_SERVER_URL);
    assert_eq!(helper_server_url("index.docker.io"), DOCKER_HUB_SERVER_URL);
    assert_eq!(helper_server_url("localhost:5000"), "localhost:5000");
}

#[test]
fn auth_files_follow_podman_then_docker() {
    let env = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CredentialEnv::from_lookup(
            move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.into()),
            Some(1000),
        )
    };
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(
        env(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1000")]).auth_files(),
        [
            p("/run/user/1000/containers/auth.json"),
            p("/h/.config/containers/auth.json"),
            p("/h/.docker/config.json"),
        ]
    );
    assert_eq!(
        env(&[
            ("HOME", "/h"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dc"),
            ("XDG_RUNTIME_DIR", ""),
        ])
        .auth_files(),
        [
            p("/run/containers/1000/auth.json"),
            p("/cfg/containers/auth.json"),
            p("/dc/config.json"),
        ]
    );
    // REGISTRY_AUTH_FILE replaces podman's files, not Docker's.
    assert_eq!(
        env(&[
            ("HOME", "/h"),
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("XDG_RUNTIME_DIR", "/r")
        ])
        .auth_files(),
        [p("/a.json"), p("/h/.docker/config.json")]
    );
    assert!(env(&[]).auth_files().len() == 1); // only /run/containers/UID
}

/// One entry per file for `reg.example`, each with its own user: the
/// highest-precedence file that has an entry wins.
#[test]
fn precedence_over_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let entry = |user: &str| {
        format!(
            r#"{{"auths":{{"reg.example":{{"auth":"{}"}},"only-{user}.example":{{"auth":"{}"}}}}}}"#,
            b64(&format!("{user}:{SECRET}")),
            b64(&format!("{user}:{SECRET}"))
        )
    };
    write(&d.join("run/containers/auth.json"), &entry("runtime"));
    write(
        &d.join("home/.config/containers/auth.json"),
        &entry("config"),
    );
    write(&d.join("home/.docker/config.json"), &entry("docker"));
    write(&d.join("explicit.json"), &entry("explicit"));
    let lookup = |explicit: bool| {
        let (home, run, explicit_file) = (d.join("home"), d.join("run"), d.join("explicit.json"));
        CredentialEnv::from_lookup(
            move |k| match k {
                "HOME" => Some(home.clone().into()),
                "XDG_RUNTIME_DIR" => Some(run.clone().into()),
                "REGISTRY_AUTH_FILE" if explicit => Some(explicit_file.clone().into()),
                _ => None,
            },
            None,
        )
    };
    let user = |s: &CredentialStore, reg: &str| match s.resolve(reg, None).unwrap() {
        Some(ResolvedCredential {
            credential: Credential::Basic { username, password },
            source,
        }) => {
            assert_eq!(password.expose(), SECRET);
            (username, source.to_string())
        }
        other => panic!("{other:?}"),
    };
    let s = CredentialStore::new(Vec::new(), &lookup(false));
    let (u, src) = user(&s, "reg.example");
    assert_eq!(u, "runtime");
    assert_eq!(
        src,
        format!(
            "{} (key \"reg.example\")",
            d.join("run/containers/auth.json").display()
        )
    );
    // Registries only a lower file knows fall through to it.
    assert_eq!(user(&s, "only-config.example").0, "config");
    assert_eq!(user(&s, "only-docker.example").0, "docker");
    assert_eq!(s.resolve("nowhere.example", None).unwrap(), None);

    let s = CredentialStore::new(Vec::new(), &lookup(true));
    assert_eq!(user(&s, "reg.example").0, "explicit");
    assert_eq!(s.files().len(), 2);
    assert_eq!(s.resolve("only-runtime.example", None).unwrap(), None);
    assert_eq!(s.resolve("only-config.example", None).unwrap(), None);
    assert_eq!(user(&s, "only-docker.example").0, "docker");

    // As in podman, a REGISTRY_AUTH_FILE that does not exist is an error.
    std::fs::remove_file(d.join("explicit.json")).unwrap();
    let e = CredentialStore::new(Vec::new(), &lookup(true))
        .resolve("reg.example", None)
        .unwrap_err();
    assert!(matches!(e, CredentialError::MissingAuthFile { .. }), "{e}");

    // --creds beats every file.
    let s = CredentialStore::new(
        vec![
            parse_creds("flag:pw", "--creds")
                .unwrap()
                .scoped("reg.example", None),
        ],
        &lookup(false),
    );
    let r = s.resolve("reg.example", None).unwrap().unwrap();
    assert_eq!(r.credential, basic("flag", "pw"));
    assert_eq!(r.source, CredentialSource::Flag("--creds".into()));
}

#[test]
fn entry_forms_and_docker_hub_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir.path().join("config.json"),
        &format!(
            r#"{{
  "auths": {{
    "https://index.docker.io/v1/": {{"auth": "{hub}", "email": "x@y"}},
    "ghcr.io": {{"username": "gh", "password": "{SECRET}"}},
    "https://token.example/v2/": {{"auth": "{tokauth}", "identitytoken": "{SECRET}"}},
    "nopad.example": {{"auth": "{nopad}"}},
    "empty.example": {{}},
    "nulls.example": {{"auth": null, "identitytoken": ""}}
  }},
  "HttpHeaders": {{"User-Agent": "x"}},
  "psFormat": "table"
}}"#,
            hub = b64(&format!("hubuser:{SECRET}")),
            tokauth = b64("tokuser:"),
            nopad = b64("np:pw").trim_end_matches('='),
        ),
    );
    let s = store(vec![f.clone()]);
    for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
        let r = s.resolve(name, Some("library/python")).unwrap().unwrap();
        assert_eq!(r.credential, basic("hubuser", SECRET), "{name}");
        assert_eq!(
            r.source,
            CredentialSource::AuthFile {
                path: f.clone(),
                key: "https://index.docker.io/v1/".into()
            }
        );
    }
    let r = s.resolve("ghcr.io", None).unwrap().unwrap();
    assert_eq!(r.credential, basic("gh", SECRET));
    let r = s.resolve("token.example", None).unwrap().unwrap();
    assert_eq!(r.credential, Credential::IdentityToken(Secret::new(SECRET)));
    let r = s.resolve("nopad.example", None).unwrap().unwrap();
    assert_eq!(r.credential, basic("np", "pw"));
    assert_eq!(s.resolve("empty.example", None).unwrap(), None);
    assert_eq!(s.resolve("nulls.example", None).unwrap(), None);
}

#[test]
fn most_specific_podman_key_wins() {
    let dir = tempfile::tempdir().unwrap();
    let auth = |u: &str| format!(r#"{{"auth":"{}"}}"#, b64(&format!("{u}:pw")));
    let f = write(
        &dir.path().join("auth.json"),
        &format!(
            r#"{{"auths":{{"quay.io":{},"quay.io/org":{},"quay.io/org/repo":{},"docker.io/library/python":{},"docker.io":{}}}}}"#,
            auth("registry"),
            auth("namespace"),
            auth("repo"),
            auth("python"),
            auth("hub"),
        ),
    );
    let s = store(vec![f]);
    let user =
        |reg: &str, repo: Option<&str>| match s.resolve(reg, repo).unwrap().unwrap().credential {
            Credential::Basic { username, .. } => username,
            c => panic!("{c:?}"),
        };
    assert_eq!(user("quay.io", Some("org/repo")), "repo");
    assert_eq!(user("quay.io", Some("org/repo/sub")), "repo");
    assert_eq!(user("quay.io", Some("org/other")), "namespace");
    assert_eq!(user("quay.io", Some("orgx/repo")), "registry");
    assert_eq!(user("quay.io", None), "registry");
    // Short Docker Hub names get their `library/`.
    assert_eq!(user("docker.io", Some("python")), "python");
    assert_eq!(user("docker.io", Some("library/python")), "python");
    assert_eq!(user("docker.io", Some("library/ruby")), "hub");
}

#[test]
fn exact_key_beats_alias_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir.path().join("auth.json"),
        &format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"docker.io":{{"auth":"{}"}}}}}}"#,
            b64("url:pw"),
            b64("exact:pw")
        ),
    );
    let s = store(vec![f]);
    let r = s.resolve("docker.io", None).unwrap().unwrap();
    assert_eq!(r.credential, basic("exact", "pw"));
    // Asked under an alias, the key written as the canonical name still wins.
    let r = s.resolve("index.docker.io", None).unwrap().unwrap();
    assert_eq!(r.credential, basic("exact", "pw"));
}

#[test]
fn malformed_lower_file_is_not_reached_when_a_higher_one_answers() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir.path().join("a.json"),
        &format!(r#"{{"auths":{{"r.example":{{"auth":"{}"}}}}}}"#, b64("u:p")),
    );
    let bad = write(&dir.path().join("b.json"), "{not json");
    let empty = write(&dir.path().join("empty.json"), " \n");
    let s = store(vec![
        empty,
        dir.path().join("absent.json"),
        good,
        bad.clone(),
    ]);
    assert_eq!(
        s.resolve("r.example", None).unwrap().unwrap().credential,
        basic("u", "p")
    );
    let e = s.resolve("other.example", None).unwrap_err();
    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
}

#[test]
fn provider_answers_with_sources_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir.path().join("auth.json"),
        &format!(
            r#"{{"auths":{{"r.example":{{"auth":"{}"}},"r.example/team/app":{{"auth":"{}"}},"bad.example":{{"auth":"!!"}}}}}}"#,
            b64(&format!("reg:{SECRET}")),
            b64(&format!("app:{SECRET}"))
        ),
    );
    let s = Arc::new(store(vec![f.clone()]));
    let p = s.clone().provider();
    let got = p("r.example", "other/repo").unwrap().unwrap();
    assert_eq!(got.credential, basic("reg", SECRET));
    assert!(
        got.source.contains(&f.display().to_string()),
        "{}",
        got.source
    );
    assert!(p("nowhere.example", "x").unwrap().is_none());
    let err = p("bad.example", "x").unwrap_err().to_string();
    assert!(err.contains("bad.example"), "{err}");
    assert!(!err.contains(SECRET));
    // podman's repository-specific key wins for that repository.
    assert_eq!(
        p("r.example", "team/app").unwrap().unwrap().credential,
        basic("app", SECRET)
    );
    assert_eq!(
        p("R.EXAMPLE", "team/app").unwrap().unwrap().credential,
        basic("app", SECRET)
    );
}

#[test]
fn nothing_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir.path().join("auth.json"),
        &format!(
            r#"{{"auths":{{"a.example":{{"auth":"{}"}},"t.example":{{"identitytoken":"{SECRET}"}}}}}}"#,
            b64(&format!("u:{SECRET}"))
        ),
    );
    let flag = parse_creds(&format!("u:{SECRET}"), "--creds").unwrap();
    let with_flag = CredentialStore::with_files(
        vec![flag.clone().scoped("a.example", None)],
        vec![f.clone()],
        None,
    );
    let s = store(vec![f]);
    let a = s.resolve("a.example", None).unwrap().unwrap();
    let t = s.resolve("t.example", None).unwrap().unwrap();
    let b = with_flag.resolve("a.example", None).unwrap().unwrap();
    assert_eq!(a.credential, basic("u", SECRET));
    let printed = format!(
        "{flag:?} {a:?} {t:?} {b:?} {} {} {s:?} {with_flag:?} {:?}",
        a.source,
        b.source,
        CredentialEnv::default()
    );
    for leak in [SECRET, "s3cr3t", &b64(&format!("u:{SECRET}"))] {
        assert!(!printed.contains(leak), "{printed}");
    }
    assert!(printed.contains("<redacted>"));
}

#[test]
fn file_errors_name_file_and_key_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"auths": {"r.example": {"auth": "#.to_string(),
            "is not valid JSON",
        ),
        (
            format!(r#"{{"auths": {{"r.example": {{"auth": "{SECRET}$$"}}}}}}"#),
            "the `auth` of \"r.example\" is invalid: not base64",
        ),
        (
            format!(
                r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
                &b64(SECRET)[1..]
            ),
            "invalid: not base64",
        ),
        (
            format!(
                r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
                b64("nocolonsecret")
            ),
            "does not decode to USER:PASSWORD",
        ),
        (
            r#"{"auths": {"r.example": {"password": 123456789}}}"#.to_string(),
            "`auths.r.example.password` must be a string",
        ),
        (
            format!(r#"{{"auths": ["{SECRET}"]}}"#),
            "`auths` must be an object",
        ),
        (
            format!(r#"{{"credsStore": ["{SECRET}"]}}"#),
            "`credsStore` must be a string",
        ),
        (format!(r#"["{SECRET}"]"#), "must be an object"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let f = write(&d.join(format!("{i}.json")), text);
        let e = store(vec![f.clone()])
            .resolve("r.example", None)
            .unwrap_err();
        let all = format!(
            "{e} | {e:?} | {:?}",
            std::error::Error::source(&e).map(|s| s.to_string())
        );
        assert!(all.contains(&f.display().to_string()), "{all}");
        assert!(e.to_string().contains(expected), "case {i}: {e}");
        for leak in [SECRET, "s3cr3t", "123456789", "nocolonsecret"] {
            assert!(!all.contains(leak), "case {i} leaks: {all}");
        }
        // Its hint ("fix or remove", exit 2): app::explain::tests::bad_file_hints.
        assert!(
            matches!(
                e,
                CredentialError::Json { .. }
                    | CredentialError::Shape { .. }
                    | CredentialError::BadAuth { .. }
            ),
            "case {i}: {e:?}"
        );
    }
    // A directory where a file should be: an error naming it, not "no entry".
    std::fs::create_dir_all(d.join("dir.json")).unwrap();
    let e = store(vec![d.join("dir.json")])
        .resolve("r.example", None)
        .unwrap_err();
    assert!(matches!(e, CredentialError::Read { .. }), "{e}");
}

#[test]
fn command_line_creds_are_offered_to_their_registry_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir.path().join("auth.json"),
        &format!(
            r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#,
            b64("hub:hubpw")
        ),
    );
    let private = parse_creds("me:private", "--creds").unwrap();
    let s = CredentialStore::with_files(
        vec![private.clone().scoped("private.example", None)],
        vec![f.clone()],
        None,
    );
    let r = s.resolve("private.example", Some("app")).unwrap().unwrap();
    assert_eq!(r.credential, basic("me", "private"));
    // Docker Hub gets what the auth file holds for it, never the private password.
    let hub = s
        .resolve("registry-1.docker.io", Some("python"))
        .unwrap()
        .unwrap();
    assert_eq!(hub.credential, basic("hub", "hubpw"));
    assert_eq!(s.resolve("other.example", None).unwrap(), None);

    // One registry, two repositories, two users (`--src-creds`, `--dest-creds`).
    let src = parse_creds("reader:r", "--src-creds").unwrap();
    let dest = parse_creds("writer:w", "--dest-creds").unwrap();
    let s = CredentialStore::with_files(
        vec![
            src.scoped("Reg.Example", Some("base")),
            dest.scoped("reg.example", Some("app")),
        ],
        Vec::new(),
        None,
    );
    let got = |repo| {
        s.resolve("reg.example", Some(repo))
            .unwrap()
            .map(|r| r.credential)
    };
    assert_eq!(got("base"), Some(basic("reader", "r")));
    assert_eq!(got("app"), Some(basic("writer", "w")));
    assert_eq!(got("third"), None);
}
