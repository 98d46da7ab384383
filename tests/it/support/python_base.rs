//! Debian Python base images for end-to-end tests, made by
//! `scripts/make-python-base.sh` (debootstrap from the apt mirror) and cached per
//! target dir, so only the first test on a machine pays for debootstrap (~1-2 min).

use std::path::PathBuf;

use super::expected::read_layout;
use super::fixtures::FixtureLayout;
use super::tools::{self, run};

/// The OCI layout of a Python base, e.g. `python_base("3.11-slim-bookworm", "bookworm",
/// "slim")`; `variant` is `slim` or `full`. Builds it on first use (needs root and the
/// apt mirror); concurrent test processes wait on one build (`flock`).
pub fn python_base(name: &str, suite: &str, variant: &str) -> FixtureLayout {
    tools::require("debootstrap", "debootstrap");
    tools::require("jq", "jq");
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-bases");
    std::fs::create_dir_all(&root).expect("mkdir python-bases");
    let dir = root.join(name);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/make-python-base.sh");
    run(tools::command("flock", "util-linux")
        .arg(root.join(format!("{name}.lock")))
        .args(["bash", script, name, suite, variant])
        .arg(&dir)
        .env("DEBOOTSTRAP_CACHE", root.join("debs")));
    let image = read_layout(&dir, name);
    FixtureLayout {
        dir,
        tag: name.to_string(),
        image,
    }
}
