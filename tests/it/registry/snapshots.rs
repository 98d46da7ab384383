//! The human output of `size`, `pull` and `push`, pinned by inline snapshots (what
//! they hide: [`crate::support::snapshot`]). The image is the fixed tiny one, so its
//! digests and sizes are pinned too.

use insta::assert_snapshot;

use crate::support::snapshot::{settings, tiny_layout};
use crate::support::{Registry, TestContext, run, tools};

/// Pushes the tiny image to `registry` as `tiny:1` with skopeo (unchanged); returns
/// its reference there.
fn tiny_in_registry(registry: &Registry, ctx: &TestContext) -> String {
    let image = tiny_layout(&ctx.path("tiny"));
    run(tools::skopeo()
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(["--format", "oci", "--preserve-digests"])
        .arg(&image.reference)
        .arg(registry.docker_ref("tiny:1")));
    registry.reference("tiny:1")
}

#[test]
fn size_prints_the_summary_and_the_layers() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let image = tiny_in_registry(&registry, &ctx);
    let out = ctx.run(["size", &image]).success();
    settings().bind(|| {
        assert_snapshot!(out.stdout, @"
    127.0.0.1:[PORT]/tiny:1
      digest        sha256:5353a5ac7c7c9f3d578f42de287a6d3402266daf92fdd2c4dbc7f5874545e475
      media type    application/vnd.oci.image.manifest.v1+json
      platform      linux/amd64
      layers        1
      compressed         204 B  (204 bytes: layers as pulled)
      uncompressed     10.2 kB  (10,240 bytes: layers on disk)
      manifest      401 bytes, config 350 bytes

      LAYER                   COMPRESSED   UNCOMPRESSED  MEDIA TYPE
      sha256:45af9b3c6267            204         10,240  application/vnd.oci.image.layer.v1.tar+gzip
    ")
    });
}

#[test]
fn pull_prints_what_it_transferred_then_the_summary() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let image = tiny_in_registry(&registry, &ctx);
    let first = ctx.run(["pull", &image]).success();
    let again = ctx.run(["pull", &image]).success();
    settings().bind(|| {
        assert_snapshot!(first.stdout, @"
        Pulled 127.0.0.1:[PORT]/tiny:1
          transferred   2 blobs, 554 B (0 already cached)
          digest        sha256:5353a5ac7c7c9f3d578f42de287a6d3402266daf92fdd2c4dbc7f5874545e475
          media type    application/vnd.oci.image.manifest.v1+json
          platform      linux/amd64
          layers        1
          compressed         204 B  (204 bytes: layers as pulled)
          uncompressed     10.2 kB  (10,240 bytes: layers on disk)
          manifest      401 bytes, config 350 bytes
        ");
        assert_snapshot!(again.stdout, @"
        Pulled 127.0.0.1:[PORT]/tiny:1
          transferred   0 blobs, 0 B (2 already cached)
          digest        sha256:5353a5ac7c7c9f3d578f42de287a6d3402266daf92fdd2c4dbc7f5874545e475
          media type    application/vnd.oci.image.manifest.v1+json
          platform      linux/amd64
          layers        1
          compressed         204 B  (204 bytes: layers as pulled)
          uncompressed     10.2 kB  (10,240 bytes: layers on disk)
          manifest      401 bytes, config 350 bytes
        ");
    });
}

#[test]
fn push_prints_the_digest_and_what_it_sent() {
    let registry = Registry::start();
    let ctx = TestContext::new();
    let image = tiny_layout(&ctx.path("tiny"));
    let dest = registry.docker_ref("pushed/tiny:1");
    let first = ctx.run(["push", &image.reference, &dest]).success();
    let again = ctx.run(["push", &image.reference, &dest]).success();
    settings().bind(|| {
        assert_snapshot!(first.stdout, @"
        Pushed 127.0.0.1:[PORT]/pushed/tiny:1
          digest      sha256:5353a5ac7c7c9f3d578f42de287a6d3402266daf92fdd2c4dbc7f5874545e475
          blobs       2 uploaded (554 B), 0 mounted, 0 already there
        ");
        assert_snapshot!(again.stdout, @"
        Pushed 127.0.0.1:[PORT]/pushed/tiny:1
          digest      sha256:5353a5ac7c7c9f3d578f42de287a6d3402266daf92fdd2c4dbc7f5874545e475
          blobs       0 uploaded (0 B), 0 mounted, 2 already there
        ");
    });
}
