//! CPU time of a container's processes, read from `/proc`, for hosts where the
//! container has no cgroup of its own.
//!
//! Rootless podman on cgroup v1 (or with cgroupfs) runs the container in the
//! caller's cgroup: its `cpuacct.usage` would count ocibench and everything
//! else of that user. The container's processes are the tree under its first
//! process (`podman inspect` `.State.Pid`). Each live process's `utime` and
//! `stime` count its own CPU, `cutime` and `cstime` the children it already
//! reaped (no longer in the tree), so their sum over the tree is the CPU the
//! container used, less children that exited unreaped by a process of the
//! tree between two readings (rare for a service).

use std::collections::HashMap;

/// One `/proc/PID/stat` line's parent and CPU ticks (user + system, own + reaped children).
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
    let ppid = u32::try_from(field(4)?).ok()?;
    let ticks: i64 = (14..=17).map(field).sum::<Option<i64>>()?;
    Some((ppid, u64::try_from(ticks).unwrap_or(0)))
}

/// The summed ticks of `root` and its descendants among `procs` (pid -> (ppid, ticks)).
pub fn tree_ticks(root: u32, procs: &HashMap<u32, (u32, u64)>) -> Option<u64> {
    let mut total = procs.get(&root)?.1;
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, (ppid, ticks)) in procs {
            if *ppid == parent && *pid != parent {
                total += ticks;
                frontier.push(*pid);
            }
        }
    }
    Some(total)
}

/// CPU seconds used so far by process `root` and its descendants; `None` when
/// `root` is gone or `/proc` cannot be read.
pub fn cpu_seconds(root: u32) -> Option<f64> {
    let mut procs = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|t| parse_stat(&t))
        {
            procs.insert(pid, stat);
        }
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    tree_ticks(root, &procs).map(|t| t as f64 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let line = "4242 (my (odd) srv) S 4200 4242 4242 0 -1 4194560 100 0 0 0 \
                    30 12 5 3 20 0 1 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_stat(line), Some((4200, 30 + 12 + 5 + 3)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn sums_the_tree_only() {
        let procs: HashMap<u32, (u32, u64)> = [
            (10, (1, 5)),
            (11, (10, 7)),
            (12, (11, 11)),
            (20, (1, 1000)), // not in the tree
        ]
        .into();
        assert_eq!(tree_ticks(10, &procs), Some(23));
        assert_eq!(tree_ticks(11, &procs), Some(18));
        assert_eq!(tree_ticks(99, &procs), None);
    }

    #[test]
    fn this_process_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let s = cpu_seconds(std::process::id()).expect("this process is in /proc");
        assert!(s > 0.0, "{s}");
    }
}
