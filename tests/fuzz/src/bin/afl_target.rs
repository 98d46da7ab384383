//! The AFL++ entry point: `afl-target TARGET`, built by `cargo afl build` (see
//! `scripts/fuzz.sh`). Persistent mode: one process runs many inputs.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = ocibench_fuzz::target(&name) else {
        let names: Vec<&str> = ocibench_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: afl-target TARGET (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| (target.run)(data));
}
