//! What the `insta` snapshots of ocibench's human output hide, and the small fixed
//! image they are taken of.
//!
//! A snapshot pins wording and layout: a reworded line or a moved column is a diff
//! someone reviews. What differs from run to run is replaced by a `[PLACEHOLDER]`
//! (temp dirs, loopback ports, timings, rates, container memory and CPU, and the
//! sizes of the busybox fixture, which follow the installed busybox-static). What
//! is the same on every machine stays: digests and sizes of images made from fixed
//! inputs, request and byte counts.
//!
//! Snapshots are inline (`assert_snapshot!(out, @"...")`) and reviewed by eye. insta
//! never accepts one by itself: a mismatch fails the test; outside CI it also leaves
//! a `.pending-snap` file next to the test for `cargo insta review` (ignored by git),
//! and with `CI` set it writes nothing.

use std::path::Path;

use insta::Settings;

use super::FixtureImage;
use super::layout::{ConfigSpec, oci_layout_from_rootfs};
use super::rootfs::{set_mode, set_modes};

/// Hides temp dirs (`[CTX]` for a `TestContext`, `[FIXTURES]/NAME` for a cached
/// fixture layout) and loopback ports (`127.0.0.1:[PORT]`).
pub fn settings() -> Settings {
    let mut s = Settings::clone_current();
    let context = std::env::temp_dir().join("ocibench-test-");
    s.add_filter(
        &format!("{}[^/\\s:]+", escape(&context.display().to_string())),
        "[CTX]",
    );
    let fixtures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ocibench-fixtures");
    s.add_filter(
        &format!(
            "{}/([a-z-]+)-[0-9a-f]{{12}}",
            escape(&fixtures.display().to_string())
        ),
        "[FIXTURES]/$1",
    );
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"(?m)^(Server Port:\s+)\d+$", "${1}[PORT]");
    s
}

/// [`settings`], and the measurements of `bench` and `run`: times, rates, the latency
/// table; for `run` also start-up time, memory, CPU and the busybox fixture's size.
pub fn load_settings() -> Settings {
    let mut s = settings();
    for (line, what) in [
        ("Time taken for tests:", "[SECONDS]"),
        ("Requests per second:", "[RATE]"),
        ("Time per request:", "[MS]"),
        ("Transfer rate:", "[KIB/S]"),
        ("Start-up time:", "[MS]"),
    ] {
        s.add_filter(
            &format!(r"(?m)^({}\s+)\d+\.\d+", escape(line)),
            format!("${{1}}{what}"),
        );
    }
    // `min mean[+/-sd] max`, each right-aligned in its column.
    s.add_filter(
        r"(?m)^ +\d+\.\d+ +\d+\.\d+ +\d+\.\d+ +\d+\.\d+$",
        "  [MIN] [MEAN] [SD] [MAX]",
    );
    // The percentile table: `  50%   1.234`.
    s.add_filter(r"(?m)^( +[\d.]+%) +\d+\.\d+", "$1 [MS]");
    // The histogram's bars: `      10.900 [1317] |■■■■`.
    s.add_filter(r"(?m)^ +\d+\.\d+ \[\d+ *\] \|■*$", "  [MS] [N] |[BAR]");
    s.add_filter(
        r"(?m)^(Image size:\s+)\S+ \S+ compressed, \S+ \S+ uncompressed$",
        "${1}[SIZE] compressed, [SIZE] uncompressed",
    );
    s.add_filter(
        r"(?m)^(Peak memory:\s+)\S+ \S+ \(\d+ bytes,",
        "${1}[SIZE] ([N] bytes,",
    );
    s.add_filter(
        r"(?m)^(Container CPU:\s+)\d+\.\d+% mean, \d+\.\d+% peak",
        "${1}[PCT]% mean, [PCT]% peak",
    );
    s
}

/// [`settings`] for the table of a real `compare` run, whose every number (and so
/// every column width) changes from run to run: runs of spaces become one, sizes and
/// times become `[SIZE]` and `[TIME]`, other numbers `[N]`. What stays is the layout:
/// the headers, one row per candidate in order, and the recommended one's `*`.
pub fn compare_table_settings() -> Settings {
    let mut s = settings();
    s.add_filter(" {2,}", " ");
    s.add_filter(r"\d+(?:[.,]\d+)* (?:B|kB|MB|GB)\b", "[SIZE]");
    s.add_filter(r"\d+(?:[.,]\d+)* (?:ms|s)\b", "[TIME]");
    s.add_filter(r"\d+(?:[.,]\d+)*", "[N]");
    s
}

/// Writes a small image with fixed content/// Writes a small image with fixed content into the OCI layout `dir`, tagged `tiny`:
/// one layer (`/app/hello.txt`, an executable `/app/run.sh`) made by GNU tar and
/// `gzip -n`, so its digests and sizes are the same on every machine.
pub fn tiny_layout(dir: &Path) -> FixtureImage {
    let rootfs = tempfile::tempdir().expect("temp dir for the tiny rootfs");
    let app = rootfs.path().join("app");
    std::fs::create_dir_all(&app).expect("mkdir app");
    std::fs::write(app.join("hello.txt"), "hello from a snapshot\n").expect("write");
    std::fs::write(app.join("run.sh"), "#!/bin/sh\necho hello\n").expect("write");
    set_modes(rootfs.path());
    set_mode(&app.join("run.sh"), 0o755);
    let spec = ConfigSpec {
        cmd: vec!["/app/run.sh".into()],
        env: vec!["PATH=/bin".into()],
        exposed_ports: Vec::new(),
        ..ConfigSpec::default()
    };
    oci_layout_from_rootfs(dir, "tiny", &[rootfs.path()], &spec)
}

/// `s` with the characters that mean something in a regex escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
