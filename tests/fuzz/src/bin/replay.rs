//! Runs a fuzz target's checks on files, without AFL: how a crash that
//! `scripts/fuzz.sh` reports is reproduced and debugged.
//! `replay TARGET FILE...` (a folder stands for the files in it).

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let Some(target) = ocibench_fuzz::target(&name) else {
        let names: Vec<&str> = ocibench_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "usage: replay TARGET FILE... (TARGET one of: {})",
            names.join(", ")
        );
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for a in args {
        let p = PathBuf::from(a);
        match std::fs::read_dir(&p) {
            Ok(dir) => {
                let mut inner: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
                inner.sort();
                files.extend(inner.into_iter().filter(|f| f.is_file()));
            }
            Err(_) => files.push(p),
        }
    }
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        eprintln!("{}: {} ({} bytes)", target.name, f.display(), data.len());
        (target.run)(&data);
    }
    ocibench_fuzz::remove_scratch();
    eprintln!(
        "{}: {} inputs, no property broken",
        target.name,
        files.len()
    );
}
