//! Every checked-in seed goes through its target's checks: the harness itself is
//! tested without AFL, and a fixed defect stays fixed (its input is kept as a seed).

use std::path::Path;

#[test]
fn every_corpus_input_keeps_its_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for target in ocibench_fuzz::TARGETS {
        let dir = root.join("corpus").join(target.name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for {}: {e}", target.name));
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let result = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(
                result.is_ok(),
                "{}: {} breaks a property",
                target.name,
                f.display()
            );
            ran += 1;
        }
    }
    assert!(ran >= ocibench_fuzz::TARGETS.len());
}
