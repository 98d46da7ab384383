//! Docker Hub's bearer-token flow against the real Distribution registry (`auth: token`)
//! and a token issuer in the test ([`crate::support::token`]): anonymous tokens, Basic
//! credentials on the token request, per-repository grants, and the scopes ocibench asks
//! for (`pull,push` for a push target, `pull` for a mount source).
//!
//! Policy in every test: `alice` may pull and push `alice/*`, `bob` `bob/*` and `public/*`;
//! anyone may pull `public/*`.

use crate::support::token::{Policy, SERVICE, TokenIssuer, TokenRequest};
use crate::support::{
    Output, Registry, TestContext, Variant, fixture_layout, push_fixture_as, tools,
};

const ALICE: &str = "alice";
const ALICE_PW: &str = "alice-Pa55-word";

fn setup() -> (TokenIssuer, Registry) {
    let issuer = TokenIssuer::start(
        Policy::new()
            .user(ALICE, ALICE_PW)
            .user("bob", "bob-pw")
            .allow(ALICE, "alice/", &["pull", "push"])
            .allow("bob", "bob/", &["pull", "push"])
            .allow("bob", "public/", &["pull", "push"])
            .allow_anyone("public/", &["pull"]),
    );
    let registry = issuer.registry();
    (issuer, registry)
}

fn alice_creds() -> String {
    format!("{ALICE}:{ALICE_PW}")
}

/// The manifest digest skopeo reads for `repo_tag` as `creds`.
fn skopeo_digest(registry: &Registry, repo_tag: &str, creds: &str) -> String {
    let out = tools::run_stdout(
        tools::skopeo()
            .args(["inspect", "--tls-verify=false", "--creds", creds])
            .arg(registry.docker_ref(repo_tag)),
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("skopeo inspect JSON");
    v["Digest"].as_str().expect("Digest").to_string()
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    out.assert_hides(&[ALICE_PW]);
}

fn with_scope<'a>(requests: &'a [TokenRequest], scope: &str) -> Vec<&'a TokenRequest> {
    requests
        .iter()
        .filter(|r| r.scopes.iter().any(|s| s == scope))
        .collect()
}

#[test]
fn anonymous_tokens_pull_public_but_not_private_repositories() {
    let (issuer, registry) = setup();
    push_fixture_as(&registry, "alice/app:1", &alice_creds());
    push_fixture_as(&registry, "public/base:1", "bob:bob-pw");
    issuer.clear();
    let ctx = TestContext::new();

    let out = ctx
        .run(["pull", "--json", &registry.reference("public/base:1")])
        .success();
    assert_eq!(
        out.json()["image"]["digest"],
        fixture_layout(Variant::Oci).image.manifest_digest
    );

    let out = ctx
        .run(["pull", &registry.reference("alice/app:1")])
        .failure(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    for needle in [
        registry.addr(),
        "alice/app",
        "credentials: none (anonymous)",
        "\nhint: ",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?}:\n{}", out.stderr);
    }

    let requests = issuer.requests();
    let private = with_scope(&requests, "repository:alice/app:pull");
    assert!(!private.is_empty(), "{requests:#?}");
    for r in private {
        assert_eq!(r.user, None, "{r:?}");
        assert_eq!(r.service.as_deref(), Some(SERVICE));
        assert_eq!(r.granted, [("alice/app".to_string(), vec![])], "{r:?}");
    }
    let public = with_scope(&requests, "repository:public/base:pull");
    assert!(
        public.iter().all(|r| r.user.is_none()
            && r.granted == [("public/base".to_string(), vec!["pull".to_string()])]),
        "{requests:#?}"
    );
}

#[test]
fn alice_pulls_and_pushes_her_repositories() {
    let (issuer, registry) = setup();
    push_fixture_as(&registry, "alice/app:1", &alice_creds());
    issuer.clear();
    let ctx = TestContext::new();
    let creds = alice_creds();

    let out = ctx
        .run([
            "--creds",
            &creds,
            "pull",
            "--json",
            &registry.reference("alice/app:1"),
        ])
        .success();
    assert_no_secret(&out);

    let layout = fixture_layout(Variant::Oci);
    let out = ctx
        .run([
            "--creds",
            &creds,
            "push",
            &layout.oci_ref(),
            &registry.docker_ref("alice/new:1"),
            "--json",
        ])
        .success();
    assert_no_secret(&out);
    let report = out.json();
    assert_eq!(report["digest"], layout.image.manifest_digest);
    assert_eq!(
        skopeo_digest(&registry, "alice/new:1", &creds),
        layout.image.manifest_digest
    );

    let requests = issuer.requests();
    let push = with_scope(&requests, "repository:alice/new:pull,push");
    assert!(!push.is_empty(), "{requests:#?}");
    for r in push {
        assert_eq!(r.user.as_deref(), Some(ALICE));
        assert!(r.authenticated, "{r:?}");
        assert_eq!(
            r.granted[0],
            (
                "alice/new".to_string(),
                vec!["pull".to_string(), "push".to_string()]
            )
        );
    }
    assert!(requests.iter().all(|r| r.status == 200), "{requests:#?}");

    // A wrong password is refused by the token server, named as such.
    let wrong = format!("{ALICE}:wrong");
    let out = ctx
        .run([
            "--creds",
            &wrong,
            "pull",
            &registry.reference("alice/app:1"),
        ])
        .failure(1);
    assert!(
        out.stderr.contains(&issuer.realm()) && out.stderr.contains("credentials: --creds"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\nhint: "), "{}", out.stderr);
}

#[test]
fn pushing_where_the_token_may_not_write_fails_clearly() {
    let (issuer, registry) = setup();
    push_fixture_as(&registry, "public/base:1", "bob:bob-pw");
    let ctx = TestContext::new();
    let creds = alice_creds();
    let layout = fixture_layout(Variant::Oci);
    for (repo, granted) in [
        ("bob/app", vec![]),
        ("public/base", vec!["pull".to_string()]),
    ] {
        issuer.clear();
        let out = ctx.run([
            "--creds",
            &creds,
            "push",
            &layout.oci_ref(),
            &registry.docker_ref(&format!("{repo}:2")),
        ]);
        assert_no_secret(&out);
        let out = out.failure(1);
        for needle in [
            format!("registry {} refused access to {repo}", registry.addr()),
            "credentials: --creds".to_string(),
            "\nhint: check the credentials from --creds".to_string(),
        ] {
            assert!(out.stderr.contains(&needle), "{needle:?}:\n{}", out.stderr);
        }
        let requests = issuer.requests();
        let scope = format!("repository:{repo}:pull,push");
        let asked = with_scope(&requests, &scope);
        assert!(!asked.is_empty(), "{requests:#?}");
        assert!(
            asked
                .iter()
                .all(|r| r.granted == [(repo.to_string(), granted.clone())]),
            "{requests:#?}"
        );
        let tag = registry
            .storage_root()
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags/2");
        assert!(!tag.exists(), "{repo}:2 was pushed");
    }
}

#[test]
fn mount_asks_pull_on_the_source_and_push_on_the_target() {
    let (issuer, registry) = setup();
    push_fixture_as(&registry, "alice/app:1", &alice_creds());
    let ctx = TestContext::new();
    let creds = alice_creds();
    ctx.run([
        "--creds",
        &creds,
        "pull",
        &registry.reference("alice/app:1"),
    ])
    .success();
    issuer.clear();

    let mark = registry.mark();
    let out = ctx
        .run([
            "--creds",
            &creds,
            "push",
            &registry.docker_ref("alice/app:1"),
            &registry.docker_ref("alice/copy:1"),
            "--json",
        ])
        .success();
    let report = out.json();
    let image = &fixture_layout(Variant::Oci).image;
    assert_eq!(report["mounted_blobs"], 1 + image.layers.len(), "{report}");
    assert_eq!(report["uploaded_blobs"], 0, "{report}");
    let mounts: Vec<_> = registry
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.method == "POST" && r.uri.contains("mount="))
        .collect();
    // Each answered 201 (after the 401 that asks for the mount token).
    let mounted = mounts.iter().filter(|r| r.status == 201).count();
    assert_eq!(mounted, 1 + image.layers.len(), "{mounts:#?}");
    assert!(
        mounts.iter().all(|r| r.status == 201 || r.status == 401),
        "{mounts:#?}"
    );

    let requests = issuer.requests();
    let mount_tokens: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.scopes
                == [
                    "repository:alice/copy:pull,push".to_string(),
                    "repository:alice/app:pull".to_string(),
                ]
        })
        .collect();
    assert!(!mount_tokens.is_empty(), "{requests:#?}");
    assert_eq!(
        mount_tokens[0].granted,
        [
            (
                "alice/copy".to_string(),
                vec!["pull".to_string(), "push".to_string()]
            ),
            ("alice/app".to_string(), vec!["pull".to_string()]),
        ]
    );
    assert_eq!(
        skopeo_digest(&registry, "alice/copy:1", &creds),
        image.manifest_digest
    );
}
