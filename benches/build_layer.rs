//! Build-speed benchmark of the layer builder (`cargo bench --bench build_layer`).
//!
//! Driven by `benches/build-layer`, which prepares the input and times the
//! `tar | pigz` and `tar | gzip` baselines. Builds one layer from
//! `$OCIBENCH_BENCH_DIR` (placed at `/`), once into `io::sink()` (comparable to
//! `tar | pigz > /dev/null`) and once into a temporary blob store (the real
//! `build` path: temp file, verify, rename), then prints seconds, throughput
//! and this process's peak RSS.
//!
//! Knobs: `OCIBENCH_BENCH_THREADS` (default: one per core), `OCIBENCH_BENCH_LEVEL` (6),
//! `OCIBENCH_BENCH_MODE=sink|store|both` (default both).

use std::time::Instant;

use ocibench::oci::build::layer::{LayerBuilder, LayerStats};
use ocibench::oci::store::BlobStore;
use ocibench::progress::NoProgress;

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

fn report(what: &str, secs: f64, s: &LayerStats) {
    let mb = s.uncompressed_bytes as f64 / 1e6;
    println!(
        "{what}: {secs:.3} s, {:.1} MB/s uncompressed, {mb:.1} MB -> {:.1} MB ({:.1}%), {}",
        mb / secs,
        s.compressed_bytes as f64 / 1e6,
        100.0 * s.compressed_bytes as f64 / s.uncompressed_bytes as f64,
        s.digest
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and then there is nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "build_layer: a benchmark; run benches/build-layer or cargo bench --bench build_layer"
        );
        return;
    }
    let Some(dir) = std::env::var_os("OCIBENCH_BENCH_DIR") else {
        eprintln!(
            "build_layer: set OCIBENCH_BENCH_DIR to the directory to pack (see benches/build-layer)"
        );
        std::process::exit(2);
    };
    let threads: usize = env_num("OCIBENCH_BENCH_THREADS", 0);
    let level: u32 = env_num("OCIBENCH_BENCH_LEVEL", 6);
    let mut b = LayerBuilder::new();
    b.add(&dir, "/").threads(threads).level(level);

    let mode = std::env::var("OCIBENCH_BENCH_MODE").unwrap_or_else(|_| "both".into());
    let sink = (mode != "store").then(|| {
        let t = Instant::now();
        let sink = b
            .write_to(std::io::sink(), &NoProgress)
            .expect("layer builds");
        report("layer -> sink ", t.elapsed().as_secs_f64(), &sink);
        sink
    });
    if mode == "sink" {
        println!("peak RSS: {:.1} MiB", peak_rss_mib());
        return;
    }

    let tmp = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::open(tmp.path()).expect("store opens");
    let t = Instant::now();
    let stored = b.write_to_store(&store, &NoProgress).expect("layer builds");
    report("layer -> store", t.elapsed().as_secs_f64(), &stored);
    if let Some(sink) = sink {
        assert_eq!(sink, stored, "same layer both ways");
    }
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
}
