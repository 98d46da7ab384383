//! Resource limits for containers, chosen within this process's hard limits.
//!
//! podman's default ulimits (nofile 1048576, nproc unlimited-ish) exceed the hard
//! limits of unprivileged CI runners and nested containers (no CAP_SYS_RESOURCE),
//! where the runtime then fails with `setrlimit RLIMIT_NOFILE: Operation not
//! permitted`. Limits at or below our own hard limits always apply.

/// Upper bounds ocibench asks for: plenty for a benchmarked service.
pub const NOFILE_CAP: u64 = 65536;
pub const NPROC_CAP: u64 = 4096;

/// Hard limits of this process; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardLimits {
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
}

/// `getrlimit` for RLIMIT_NOFILE and RLIMIT_NPROC.
pub fn hard_limits() -> HardLimits {
    let mut nofile = EMPTY;
    let mut nproc = EMPTY;
    // SAFETY: getrlimit writes into the structs we own; nothing else is touched.
    let (rc_nofile, rc_nproc) = unsafe {
        (
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile),
            libc::getrlimit(libc::RLIMIT_NPROC, &mut nproc),
        )
    };
    HardLimits {
        nofile: finite(rc_nofile, &nofile),
        nproc: finite(rc_nproc, &nproc),
    }
}

const EMPTY: libc::rlimit = libc::rlimit {
    rlim_cur: 0,
    rlim_max: 0,
};

fn finite(rc: libc::c_int, rl: &libc::rlimit) -> Option<u64> {
    (rc == 0 && rl.rlim_max != libc::RLIM_INFINITY).then_some(rl.rlim_max)
}

/// The `--ulimit` arguments for `podman run`: soft = hard = min(our hard limit,
/// cap), for each resource `extra_args` does not set itself (`--ulimit host`
/// leaves everything to the user).
pub fn ulimit_args(hard: HardLimits, extra_args: &[String]) -> Vec<String> {
    let given = user_ulimits(extra_args);
    if given.iter().any(|r| r == "host") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, limit, cap) in [
        ("nofile", hard.nofile, NOFILE_CAP),
        ("nproc", hard.nproc, NPROC_CAP),
    ] {
        if given.iter().any(|g| g == name) {
            continue;
        }
        let v = limit.map_or(cap, |h| h.min(cap));
        out.push("--ulimit".to_string());
        out.push(format!("{name}={v}:{v}"));
    }
    out
}

/// Resource names in `--ulimit NAME=...` / `--ulimit=NAME=...` arguments.
fn user_ulimits(args: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = if a == "--ulimit" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("--ulimit=")
        };
        if let Some(v) = value {
            names.push(v.split('=').next().unwrap_or(v).to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn within_hard_limits() {
        let h = HardLimits {
            nofile: Some(20000),
            nproc: Some(96365),
        };
        assert_eq!(
            ulimit_args(h, &[]),
            s(&[
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=4096:4096"
            ])
        );
    }

    #[test]
    fn capped_when_unlimited_or_large() {
        let h = HardLimits {
            nofile: Some(1 << 20),
            nproc: None,
        };
        assert_eq!(
            ulimit_args(h, &[]),
            s(&[
                "--ulimit",
                "nofile=65536:65536",
                "--ulimit",
                "nproc=4096:4096"
            ])
        );
    }

    #[test]
    fn small_hard_limits_are_kept() {
        let h = HardLimits {
            nofile: Some(1024),
            nproc: Some(512),
        };
        assert_eq!(
            ulimit_args(h, &[]),
            s(&["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=512:512"])
        );
    }

    #[test]
    fn user_choice_wins_per_resource() {
        let h = HardLimits {
            nofile: Some(20000),
            nproc: Some(20000),
        };
        assert_eq!(
            ulimit_args(h, &s(&["--ulimit", "nofile=100:100"])),
            s(&["--ulimit", "nproc=4096:4096"])
        );
        assert_eq!(
            ulimit_args(h, &s(&["--ulimit=nproc=10:10", "-e", "A=1"])),
            s(&["--ulimit", "nofile=20000:20000"])
        );
        assert!(ulimit_args(h, &s(&["--ulimit", "host"])).is_empty());
    }

    #[test]
    fn this_process_has_readable_limits() {
        // Whatever they are, the chosen values never exceed them.
        let h = hard_limits();
        let args = ulimit_args(h, &[]);
        let nofile: u64 = args[1].split(':').nth(1).unwrap().parse().unwrap();
        assert!(h.nofile.is_none_or(|n| nofile <= n));
    }
}
