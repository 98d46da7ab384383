//! Property checks for every ocibench parser that reads untrusted bytes, one
//! function per fuzz target. AFL++ drives them through `afl-target TARGET`
//! (coverage-guided, `scripts/fuzz.sh`); `replay TARGET FILE...` and this crate's
//! `cargo test` run the same checks on given files without AFL.
//!
//! A target returns quietly on input its parser rejects, and panics (a crash to
//! AFL) when a parser panics, hangs, or breaks a property it promises: a reference
//! that parses must survive display and parse again unchanged, served blob bytes
//! must come from inside the archive, the ISA-L inflater must agree with zlib-rs,
//! no secret may reach an error message, and so on.

pub mod targets;

/// A target: its name (the corpus folder and dictionary under `tests/fuzz/`) and
/// its check.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "reference",
        run: targets::reference::run,
    },
    Target {
        name: "manifest",
        run: targets::manifest::run,
    },
    Target {
        name: "www_authenticate",
        run: targets::www_authenticate::run,
    },
    Target {
        name: "retry_after",
        run: targets::retry_after::run,
    },
    Target {
        name: "credentials",
        run: targets::credentials::run,
    },
    Target {
        name: "oci_archive",
        run: targets::archive::run_oci,
    },
    Target {
        name: "docker_archive",
        run: targets::archive::run_docker,
    },
    Target {
        name: "inflate",
        run: targets::inflate::run,
    },
    Target {
        name: "compare_config",
        run: targets::compare_config::run,
    },
    Target {
        name: "registries_conf",
        run: targets::registries_conf::run,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A private scratch folder for this thread, on tmpfs when there is one (the archive
/// and credential targets write files on every execution). `OCIBENCH_FUZZ_TMP`
/// names it exactly (`scripts/fuzz.sh` gives each fuzzer one, and removes it);
/// otherwise it is a fresh folder per process and thread, removed when the thread
/// ends or by [`remove_scratch`].
pub fn scratch_root() -> std::path::PathBuf {
    SCRATCH.with(|s| s.path.clone())
}

/// Removes this thread's scratch folder (a `main` thread's is never dropped).
pub fn remove_scratch() {
    SCRATCH.with(|s| {
        if s.owned {
            let _ = std::fs::remove_dir_all(&s.path);
        }
    });
}

struct Scratch {
    path: std::path::PathBuf,
    owned: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

thread_local! {
    static SCRATCH: Scratch = {
        let (path, owned) = match std::env::var_os("OCIBENCH_FUZZ_TMP") {
            Some(p) => (std::path::PathBuf::from(p), false),
            None => {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let shm = std::path::Path::new("/dev/shm");
                let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
                (base.join(format!("ocibench-fuzz-{}-{n}", std::process::id())), true)
            }
        };
        std::fs::create_dir_all(&path).expect("create the fuzz scratch folder");
        Scratch { path, owned }
    };
}
