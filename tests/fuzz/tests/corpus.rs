//! Every checked-in seed (and every regression input under `regressions/`) goes
//! through its target's checks: the harness itself is tested without AFL, and a
//! fixed defect stays fixed.

use std::path::Path;

#[test]
fn every_corpus_input_keeps_its_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for target in ocibench_fuzz::TARGETS {
        for folder in ["corpus", "regressions"] {
            let dir = root.join(folder).join(target.name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                assert_ne!(folder, "corpus", "no corpus for {}", target.name);
                continue;
            };
            let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).unwrap();
                let result = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(result.is_ok(), "{}: {} breaks a property", target.name, f.display());
                ran += 1;
            }
        }
    }
    assert!(ran >= ocibench_fuzz::TARGETS.len());
}
