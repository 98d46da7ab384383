//! OCI 1.1 artifacts: a referrer (an SBOM manifest whose `subject` is an image)
//! pushed by raw API to the Distribution registry, listed by `inspect --referrers`
//! through the tag-schema fallback (Distribution 2.8 answers 404 to the referrers
//! API), listed through the referrers API of a mock registry (with and without the
//! registry applying the `artifactType` filter), and copied by `copy` with its
//! `subject` and `artifactType` intact (digest kept, as skopeo reads it back).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::http_server::{Reply, Request, Server};
use crate::support::layout::to_json_bytes;
use crate::support::media::{OCI_INDEX, OCI_MANIFEST};
use crate::support::mock_image::{MockImage, sha};
use crate::support::tools::{self, sha256_bytes};
use crate::support::{Registry, TestContext, Variant, push_fixture};

const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const SPDX: &str = "application/spdx+json";
const SIGNATURE: &str = "application/vnd.example.signature";

/// Uploads `bytes` as a blob of `repo` (POST, then PUT with the digest: the
/// monolithic upload every registry takes); returns its digest.
fn push_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_bytes(bytes);
    reg.upload_blob(repo, bytes, &digest);
    digest
}

fn put_manifest(reg: &Registry, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let put = reg.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    assert_eq!(put.status, 201, "PUT manifest {reference}: {}", put.text());
}

/// An SBOM artifact manifest for `subject` (as `oras attach` writes one): the empty
/// config with its data inline, one SPDX layer, `artifactType`, `subject`.
fn sbom_manifest(subject_digest: &str, subject_size: usize, empty: &str, sbom: &str) -> Vec<u8> {
    to_json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX,
        "config": {"mediaType": EMPTY_CONFIG, "digest": empty, "size": 2, "data": "e30="},
        "layers": [{"mediaType": SPDX, "digest": sbom, "size": 27}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size},
        "annotations": {"org.opencontainers.image.created": "2026-11-27T00:00:00Z"}
    }))
}

#[test]
fn a_referrer_is_listed_through_the_tag_schema_and_copied_with_its_subject() {
    let reg = Registry::start();
    let ctx = TestContext::new();
    let image = push_fixture(&reg, "app", "v1", Variant::Oci);
    let empty = push_blob(&reg, "app", b"{}");
    let sbom = push_blob(&reg, "app", br#"{"spdxVersion":"SPDX-2.3"}"#);
    let artifact = sbom_manifest(&image.manifest_digest, image.manifest.len(), &empty, &sbom);
    let artifact_digest = sha256_bytes(&artifact);
    put_manifest(&reg, "app", &artifact_digest, OCI_MANIFEST, &artifact);
    // The fallback index under `<alg>-<hex>`, as a client of a registry without
    // the referrers API maintains it.
    let fallback_tag = image.manifest_digest.replace(':', "-");
    let entry = json!({
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX,
        "digest": artifact_digest,
        "size": artifact.len(),
        "annotations": {"org.opencontainers.image.created": "2026-11-27T00:00:00Z"}
    });
    let index =
        to_json_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}));
    put_manifest(&reg, "app", &fallback_tag, OCI_INDEX, &index);

    let mark = reg.mark();
    let listed = ctx
        .run(["inspect", "--referrers", "--json", &reg.reference("app:v1")])
        .success()
        .json();
    assert_eq!(
        listed,
        json!({
            "subject": image.manifest_digest,
            "via": "tag-schema",
            "artifact_type": null,
            "referrers": [entry],
        })
    );
    // The API was asked first (Distribution 2.8 has none), then the tag.
    let paths: Vec<String> = reg
        .requests_since(mark)
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path().to_string())
        .collect();
    let api = format!("/v2/app/referrers/{}", image.manifest_digest);
    let tag = format!("/v2/app/manifests/{fallback_tag}");
    let (a, t) = (
        paths.iter().position(|p| *p == api),
        paths.iter().position(|p| *p == tag),
    );
    assert!(a.is_some() && t.is_some() && a < t, "{paths:?}");

    let text = ctx
        .run(["inspect", "--referrers", &reg.reference("app:v1")])
        .success()
        .stdout;
    assert_eq!(
        text,
        format!(
            "Referrers of docker://{}\n  subject       {}\n  found via     the tag schema (tag {fallback_tag})\n  referrers     1\n\n  {artifact_digest}\n    artifact type  {SPDX}\n    media type     {OCI_MANIFEST}\n    size           {} bytes\n    annotation     org.opencontainers.image.created=2026-11-27T00:00:00Z\n",
            reg.reference("app:v1"),
            image.manifest_digest,
            artifact.len()
        )
    );
    // Filtered out here (the tag schema cannot filter): none of another type.
    let none = ctx
        .run([
            "inspect",
            "--referrers",
            "--artifact-type",
            SIGNATURE,
            "--json",
            &reg.reference("app:v1"),
        ])
        .success()
        .json();
    assert_eq!(none["referrers"], json!([]));
    assert_eq!(none["artifact_type"], json!(SIGNATURE));

    // `copy` keeps the artifact byte for byte: subject, artifactType and data included.
    let copied = ctx
        .run([
            "copy",
            "--json",
            &format!(
                "docker://{}",
                reg.reference(&format!("app@{artifact_digest}"))
            ),
            &format!("docker://{}", reg.reference("copied:sbom")),
        ])
        .success()
        .json();
    assert_eq!(copied["digest"], json!(artifact_digest), "{copied:#}");
    let mut cmd = tools::skopeo();
    cmd.args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &reg.docker_ref("copied:sbom"),
    ]);
    assert_eq!(tools::run(&mut cmd).stdout, artifact);
    // `inspect` of the artifact names what it is and what it refers to.
    let inspected = ctx
        .run(["inspect", "--json", &reg.reference("copied:sbom")])
        .success()
        .json();
    assert_eq!(
        (&inspected["artifact_type"], &inspected["subject"]),
        (
            &json!(SPDX),
            &json!({"mediaType": OCI_MANIFEST, "digest": image.manifest_digest, "size": image.manifest.len()})
        )
    );
}

#[test]
fn inspect_referrers_of_a_layout_is_refused_with_a_hint() {
    let ctx = TestContext::new();
    ctx.run(["inspect", "--referrers", "oci:/nonexistent/layout:v1"])
        .failure(2)
        .stderr_contains("is not in a registry")
        .stderr_contains("hint: referrers live in registries");
}

/// A registry with the referrers API: `app:v1` is a one-layer image with two
/// referrers (an SBOM and a signature). With `apply_filter`, an `artifactType`
/// query is applied (and said so in `OCI-Filters-Applied`); without, ignored.
fn referrers_registry(apply_filter: bool) -> (Server, String) {
    let img = Arc::new(MockImage::one_file("hello.txt", b"hello\n").build());
    let subject = sha(&img.manifest);
    let entry = |t: &str, n: u8| {
        json!({"mediaType": OCI_MANIFEST, "artifactType": t, "digest": sha(&[n]), "size": 500 + u64::from(n),
               "annotations": {"n": n.to_string()}})
    };
    let all = vec![entry(SPDX, 1), entry(SIGNATURE, 2)];
    let api = format!("/v2/app/referrers/{subject}");
    let handler = Arc::new(move |req: &Request| {
        if req.path == "/v2/app/manifests/v1" {
            return Reply::new(200, img.manifest.clone())
                .header("Content-Type", OCI_MANIFEST)
                .header("Docker-Content-Digest", &sha(&img.manifest));
        }
        if let Some(query) = req.path.strip_prefix(&api) {
            assert_eq!(req.header("accept"), Some(OCI_INDEX));
            let wanted = query
                .strip_prefix("?artifactType=")
                .map(|t| t.replace("%2F", "/").replace("%2B", "+"));
            let (list, filtered): (Vec<Value>, bool) = match &wanted {
                Some(t) if apply_filter => (
                    all.iter()
                        .filter(|e| e["artifactType"] == json!(t))
                        .cloned()
                        .collect(),
                    true,
                ),
                _ => (all.clone(), false),
            };
            let body = to_json_bytes(
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list}),
            );
            let reply = Reply::new(200, body).header("Content-Type", OCI_INDEX);
            return if filtered {
                reply.header("OCI-Filters-Applied", "artifactType")
            } else {
                reply
            };
        }
        Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
    });
    (Server::start(handler), subject)
}

#[test]
fn referrers_come_from_the_referrers_api_filtered_by_the_registry_or_here() {
    let ctx = TestContext::new();
    for apply_filter in [true, false] {
        let (server, subject) = referrers_registry(apply_filter);
        let image = format!("{}/app:v1", server.addr());
        let all = ctx
            .run(["inspect", "--referrers", "--json", &image])
            .success()
            .json();
        assert_eq!(all["via"], json!("referrers-api"));
        assert_eq!(all["subject"], json!(subject));
        let digests: Vec<&Value> = all["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["digest"])
            .collect();
        assert_eq!(digests, [&json!(sha(&[1])), &json!(sha(&[2]))]);
        let sboms = ctx
            .run([
                "inspect",
                "--referrers",
                "--artifact-type",
                SPDX,
                "--json",
                &image,
            ])
            .success()
            .json();
        assert_eq!(
            sboms["referrers"],
            json!([{"mediaType": OCI_MANIFEST, "artifactType": SPDX, "digest": sha(&[1]), "size": 501,
                    "annotations": {"n": "1"}}]),
            "apply_filter {apply_filter}"
        );
        // The API answered: the fallback tag was never asked for.
        let tag = format!("/v2/app/manifests/{}", subject.replace(':', "-"));
        assert!(
            server.requests().iter().all(|r| r.path != tag),
            "fallback tag asked for"
        );
    }
}
