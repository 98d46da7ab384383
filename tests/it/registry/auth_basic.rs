//! Basic auth (`auth: htpasswd`) against the real Distribution registry, through the
//! `ocibench` binary: anonymous access refused with an error naming the registry and
//! the credential source, `--creds`, Docker's `config.json`, podman's `auth.json` (both
//! `$XDG_RUNTIME_DIR` and `REGISTRY_AUTH_FILE`), and no password in any output.

use crate::support::context::write_auth_file;
use crate::support::{Output, Registry, TestContext, Variant, fixture_layout, push_fixture};

const USER: &str = "ocitester";
const PASSWORD: &str = "Sup3r-s3cret-pw";

fn registry() -> Registry {
    Registry::builder().htpasswd(USER, PASSWORD).start()
}

/// Neither the password nor the base64 `user:password` a header would carry is printed.
#[track_caller]
fn assert_no_secret(out: &Output) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    out.assert_hides(&[PASSWORD, &b64]);
}

/// Exit 1 with `error:` naming the registry, the credential source and a `hint:`.
#[track_caller]
fn assert_refused(out: Output, registry: &Registry, source: &str) {
    assert_no_secret(&out);
    let out = out.failure(1);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line:\n{}", out.stderr));
    assert!(error.contains(registry.addr()), "{error}");
    assert!(error.contains(&format!("credentials: {source}")), "{error}");
    assert!(
        out.stderr.lines().any(|l| l.starts_with("hint: ")),
        "no hint:\n{}",
        out.stderr
    );
}

fn push_args(registry: &Registry, repo_tag: &str) -> Vec<String> {
    vec![
        "push".into(),
        fixture_layout(Variant::Oci).oci_ref(),
        registry.docker_ref(repo_tag),
        "--json".into(),
    ]
}

#[test]
fn anonymous_pull_and_push_are_refused_naming_the_registry() {
    let registry = registry();
    let image = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();

    let out = ctx.run(["pull", &image.reference]);
    assert_refused(out.clone(), &registry, "none (anonymous)");
    assert!(out.stderr.contains("hint: log in"), "{}", out.stderr);

    let out = ctx.run(push_args(&registry, "anon:1"));
    assert_refused(out, &registry, "none (anonymous)");
    assert!(registry.tags("anon").is_empty(), "nothing was pushed");
}

#[test]
fn creds_flag_pushes_and_a_wrong_password_names_the_flag() {
    let registry = registry();
    let ctx = TestContext::new();
    let creds = format!("{USER}:{PASSWORD}");

    let out = ctx
        .run(
            ["--creds", creds.as_str()]
                .into_iter()
                .map(String::from)
                .chain(push_args(&registry, "mine:1")),
        )
        .success();
    assert_no_secret(&out);
    assert_eq!(
        out.json()["digest"],
        fixture_layout(Variant::Oci).image.manifest_digest
    );
    assert_eq!(registry.tags("mine"), ["1"]);

    let pulled = ctx
        .run([
            "--creds",
            &creds,
            "pull",
            "--json",
            &registry.reference("mine:1"),
        ])
        .success();
    assert_no_secret(&pulled);

    let wrong = format!("{USER}:not-{PASSWORD}");
    let out = ctx.run(["--creds", &wrong, "pull", &registry.reference("mine:1")]);
    assert!(!out.stderr.contains(&wrong), "{}", out.stderr);
    assert_refused(out.clone(), &registry, "--creds");
    assert!(
        out.stderr
            .contains("hint: check the credentials from --creds")
    );

    let out = ctx.run(
        ["--creds", wrong.as_str()]
            .into_iter()
            .map(String::from)
            .chain(push_args(&registry, "mine:2")),
    );
    assert!(!out.stderr.contains(&wrong), "{}", out.stderr);
    assert_refused(out, &registry, "--creds");
    assert_eq!(registry.tags("mine"), ["1"]);
}

#[test]
fn docker_config_json_credentials_work() {
    let registry = registry();
    let image = push_fixture(&registry, "busybox", "1", Variant::Oci);
    let ctx = TestContext::new();
    let config = ctx.docker_login(&registry);

    let out = ctx.run(["pull", "--json", &image.reference]).success();
    assert_no_secret(&out);
    assert_eq!(out.json()["image"]["digest"], image.manifest_digest);
    let out = ctx.run(push_args(&registry, "from-docker:1")).success();
    assert_no_secret(&out);
    assert_eq!(registry.tags("from-docker"), ["1"]);

    // The same file with a wrong password: the error names the file, not the password.
    let wrong = Registry::builder().htpasswd(USER, "other-password").start();
    let out = ctx.run(["pull", &wrong.reference("busybox:1")]);
    assert_refused(out, &wrong, "none (anonymous)");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(registry.addr(), wrong.addr()),
    )
    .unwrap();
    let out = ctx.run(["pull", &wrong.reference("busybox:1")]);
    assert_refused(out, &wrong, &config.display().to_string());
}

#[test]
fn containers_auth_json_credentials_work() {
    let registry = registry();
    let image = push_fixture(&registry, "busybox", "1", Variant::Oci);

    // $XDG_RUNTIME_DIR/containers/auth.json, podman's default.
    let ctx = TestContext::new();
    ctx.containers_login(&registry);
    let out = ctx.run(["pull", "--json", &image.reference]).success();
    assert_no_secret(&out);
    let out = ctx.run(push_args(&registry, "from-runtime:1")).success();
    assert_no_secret(&out);

    // REGISTRY_AUTH_FILE anywhere.
    let ctx = TestContext::new();
    let file = ctx.root().join("elsewhere/my-auth.json");
    write_auth_file(&file, &registry);
    let run = |args: Vec<String>| {
        let mut cmd = ctx.cmd(args);
        cmd.env("REGISTRY_AUTH_FILE", &file);
        Output::of(&mut cmd)
    };
    let out = run(vec![
        "pull".into(),
        "--json".into(),
        image.reference.clone(),
    ])
    .success();
    assert_no_secret(&out);
    let out = run(push_args(&registry, "from-env:1")).success();
    assert_no_secret(&out);
    assert_eq!(registry.tags("from-env"), ["1"]);
    assert_eq!(registry.tags("from-runtime"), ["1"]);

    // Without the variable the same context has no credentials.
    let out = ctx.run(["pull", &image.reference]);
    assert_refused(out, &registry, "none (anonymous)");
}
