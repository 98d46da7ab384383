//! The human output of `build`, pinned by an inline snapshot (what it hides:
//! [`crate::support::snapshot`]). Built from the fixed tiny image and a fixed tree,
//! the digests are the same on every machine: a change of them is a change of
//! ocibench's reproducible output, and shows here.

use insta::assert_snapshot;

use crate::support::TestContext;
use crate::support::rootfs::set_modes;
use crate::support::snapshot::{settings, tiny_layout};

#[test]
fn build_prints_the_digest_the_summary_and_each_output() {
    let ctx = TestContext::new();
    let base = tiny_layout(&ctx.path("base"));
    let site = ctx.path("site");
    std::fs::create_dir_all(site.join("www")).unwrap();
    std::fs::write(site.join("www/index.html"), "built for a snapshot\n").unwrap();
    set_modes(&site);
    let out = ctx
        .run([
            "build",
            "--from",
            &base.reference,
            "--layer",
            &format!("{}:/srv", site.display()),
            "--cmd",
            r#"["/app/run.sh"]"#,
            "-o",
            &format!("oci:{}:v1", ctx.path("out").display()),
            "-o",
            &format!("docker-archive:{}", ctx.path("out.tar").display()),
        ])
        .success();
    settings().bind(|| assert_snapshot!(out.stdout, @"
    Built sha256:8c8c4106deb94419424e6a454475af877be86846f74b56845ccda6ada1a21691
      digest        sha256:8c8c4106deb94419424e6a454475af877be86846f74b56845ccda6ada1a21691
      media type    application/vnd.oci.image.manifest.v1+json
      platform      linux/amd64
      layers        2
      compressed         361 B  (361 bytes: layers as pulled)
      uncompressed     13.3 kB  (13,312 bytes: layers on disk)
      manifest      684 bytes, config 523 bytes
      wrote         oci:[CTX]/work/out:v1 (sha256:8c8c4106deb94419424e6a454475af877be86846f74b56845ccda6ada1a21691)
      wrote         docker-archive:[CTX]/work/out.tar (sha256:8c8c4106deb94419424e6a454475af877be86846f74b56845ccda6ada1a21691)
    "));
}
