//! The chaos test's faults one at a time, on purpose: the proxy scripted to break
//! exactly one request ([`ChaosConfig::scripted`]), then the command must still do its
//! job. Deterministic where the random run is not, so each thing the random run found
//! is pinned here by the fault and the request it hit.

use crate::support::chaos_proxy::{ChaosConfig, ChaosProxy, Fault};
use crate::support::{
    FixtureImage, Output, Registry, TestContext, Variant, fixture_layout, push_fixture,
};

/// `push --json` of the busybox layout in 64 KiB chunks (its layer is 16 of them)
/// through a proxy that breaks the first request matching `only` with `fault`, once;
/// when the push succeeds, the registry must hold the image whole.
fn push_through(fault: Fault, only: &str) -> Output {
    let registry = Registry::start();
    let layout = fixture_layout(Variant::Oci);
    let proxy = ChaosProxy::start(registry.addr(), ChaosConfig::scripted(fault, only, 1));
    let dest = format!("docker://{}/chaos/x:1", proxy.addr());
    let out = Output::of(
        TestContext::new()
            .cmd(["push", "--json", &layout.oci_ref(), &dest])
            .env("OCIBENCH_PUSH_CHUNK_BYTES", "65536"),
    );
    assert_eq!(
        proxy.injected().get(&fault),
        Some(&1),
        "the fault was injected"
    );
    if out.code() == Some(0) {
        registry.assert_holds("chaos/x:1", &layout.image.manifest_digest);
    }
    out
}

#[test]
fn a_chunk_whose_answer_was_lost_is_not_fatal() {
    push_through(Fault::DropAfter, "PATCH /v2/chaos/x/blobs/uploads/").success();
}

#[test]
fn a_chunk_held_back_and_sent_late_is_not_fatal() {
    push_through(Fault::ReorderChunk, "PATCH /v2/chaos/x/blobs/uploads/").success();
}

#[test]
fn a_chunk_sent_twice_is_not_fatal() {
    push_through(Fault::ReplayChunk, "PATCH /v2/chaos/x/blobs/uploads/").success();
}

/// `pull --json` of a busybox image through a proxy that breaks the first request
/// matching `only(image)` with `fault`, once.
fn pull_through(fault: Fault, only: impl Fn(&FixtureImage) -> String) -> (Output, FixtureImage) {
    let registry = Registry::start();
    let image = push_fixture(&registry, "base/busybox", "1", Variant::Oci);
    let config = ChaosConfig::scripted(fault, &only(&image), 1);
    let proxy = ChaosProxy::start(registry.addr(), config);
    let src = format!("{}/base/busybox:1", proxy.addr());
    let out = TestContext::new().run(["pull", "--json", &src]);
    assert_eq!(
        proxy.injected().get(&fault),
        Some(&1),
        "the fault was injected"
    );
    (out, image)
}

/// Found by the chaos run (seed 7): `pull` exited 1 with "transfer of <config> failed:
/// Peer disconnected" after one truncated config body; layers were retried, the
/// config was not.
#[test]
fn a_config_download_cut_short_is_fetched_again() {
    let (out, image) = pull_through(Fault::Truncate, |i| {
        format!("GET /v2/base/busybox/blobs/{}", i.config_digest)
    });
    assert_eq!(
        out.success().json()["image"]["digest"],
        image.manifest_digest
    );
}

/// Found by the chaos run (16 of 1,000 ops, seed 12): `pull`, `size`, `push` and `build`
/// exited 1 with "reading the response from .../manifests/1: io: Peer disconnected"
/// after one manifest body was cut short; the registry client now asks again.
#[test]
fn a_manifest_cut_short_is_fetched_again() {
    let (out, image) = pull_through(Fault::Truncate, |_| {
        "GET /v2/base/busybox/manifests/1".to_string()
    });
    assert_eq!(
        out.success().json()["image"]["digest"],
        image.manifest_digest
    );
}
