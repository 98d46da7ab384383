//! `--creds` is for one registry: the destination of `push` and `build --output`, the
//! source of `pull` and `size`; `--src-creds`/`--dest-creds` (skopeo's names) say
//! which where both ends are registries. Judged by what a token issuer in front of
//! the source registry saw: never the destination's user.
//!
//! Source: a real Distribution registry with `auth: token` (anyone may pull
//! `public/`, alice may pull `alice/`). Destination: another one with `htpasswd`.

use crate::support::token::{Policy, TokenIssuer};
use crate::support::{Output, Registry, TestContext, push_fixture_as};

const ALICE: &str = "alice";
const ALICE_PW: &str = "alice-Src-pw";
const DEST_USER: &str = "deployer";
const DEST_PW: &str = "Dest-0nly-pw";

struct Setup {
    issuer: TokenIssuer,
    source: Registry,
    dest: Registry,
}

fn setup() -> Setup {
    let issuer = TokenIssuer::start(
        Policy::new()
            .user(ALICE, ALICE_PW)
            .allow(ALICE, "alice/", &["pull", "push"])
            .allow(ALICE, "public/", &["pull", "push"])
            .allow_anyone("public/", &["pull"]),
    );
    let source = issuer.registry();
    for repo_tag in ["public/base:1", "alice/base:1"] {
        push_fixture_as(&source, repo_tag, &format!("{ALICE}:{ALICE_PW}"));
    }
    issuer.clear();
    let dest = Registry::builder().htpasswd(DEST_USER, DEST_PW).start();
    Setup {
        issuer,
        source,
        dest,
    }
}

fn dest_creds() -> String {
    format!("{DEST_USER}:{DEST_PW}")
}

/// The token issuer (the source registry's realm) never saw the destination's user.
#[track_caller]
fn assert_source_never_saw_dest_creds(s: &Setup, out: &Output) {
    out.assert_hides(&[DEST_PW, ALICE_PW]);
    let requests = s.issuer.requests();
    assert!(
        !requests.is_empty(),
        "the source was read through its realm"
    );
    for r in &requests {
        assert_ne!(
            r.user.as_deref(),
            Some(DEST_USER),
            "the destination's credentials went to the source's token realm: {r:?}"
        );
    }
}

#[test]
fn build_creds_go_to_the_output_registry_only() {
    let s = setup();
    let ctx = TestContext::new();
    let app = ctx.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hello.txt"), "hello\n").unwrap();
    let out = ctx.run([
        "build",
        "--from",
        &s.source.reference("public/base:1"),
        "--layer",
        &format!("{}:/app", app.display()),
        "--output",
        &s.dest.docker_ref("app:1"),
        "--creds",
        &dest_creds(),
    ]);
    assert_source_never_saw_dest_creds(&s, &out);
    out.success();
    assert_eq!(s.dest.tags("app"), ["1"]);
}

#[test]
fn push_creds_go_to_the_destination_only() {
    let s = setup();
    let ctx = TestContext::new();
    let out = ctx.run([
        "--creds",
        &dest_creds(),
        "push",
        &s.source.reference("public/base:1"),
        &s.dest.docker_ref("copy:1"),
    ]);
    assert_source_never_saw_dest_creds(&s, &out);
    out.success();
    assert_eq!(s.dest.tags("copy"), ["1"]);
}

#[test]
fn src_creds_and_dest_creds_each_go_to_their_registry() {
    let s = setup();
    let ctx = TestContext::new();
    let out = ctx.run([
        "push",
        "--src-creds",
        &format!("{ALICE}:{ALICE_PW}"),
        "--dest-creds",
        &dest_creds(),
        &s.source.reference("alice/base:1"),
        &s.dest.docker_ref("copy:1"),
    ]);
    assert_source_never_saw_dest_creds(&s, &out);
    out.success();
    let requests = s.issuer.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.user.as_deref() == Some(ALICE) && r.authenticated),
        "the source got --src-creds: {requests:#?}"
    );
    assert_eq!(s.dest.tags("copy"), ["1"]);
}
