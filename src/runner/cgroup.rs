//! A container's CPU time and CPU set, read from its cgroup.
//!
//! `podman stats` samples under-report a busy container (55-62% for a service
//! CPU-bound at one core, ENVIRONMENT.md), so what a trial says about the
//! service's CPU comes from the kernel's own counter instead: `cpuacct.usage`
//! (cgroup v1, nanoseconds) or `usage_usec` of `cpu.stat` (v2), read before
//! and after the load. The cgroup is the one of the container's first process
//! (`podman inspect` `.State.Pid` -> `/proc/PID/cgroup`), so this works with
//! cgroupfs and systemd managers and with v1, hybrid and v2 hosts alike.

use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The files of one container's cgroup that ocibench reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// `cpuacct.usage` (v1, ns) or `cpu.stat` (v2, `usage_usec`).
    pub cpu_usage: Option<PathBuf>,
    /// `cpuset.effective_cpus` / `cpuset.cpus` (v1) or `cpuset.cpus.effective` (v2).
    pub cpuset: Option<PathBuf>,
    /// Where the container has no cgroup of its own (rootless on cgroup v1):
    /// its first process, whose process tree's CPU time is read instead.
    pub process_tree: Option<u32>,
}

impl ContainerCgroup {
    /// The cgroup of process `pid`, as `/proc/PID/cgroup` names it.
    pub fn of_pid(pid: u32) -> ContainerCgroup {
        match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            Ok(text) => locate(&text, Path::new(CGROUP_ROOT), &|p| p.exists()),
            Err(_) => ContainerCgroup::default(),
        }
    }

    /// The container's processes, under `pid`, without a cgroup of their own.
    pub fn process_tree(pid: u32) -> ContainerCgroup {
        ContainerCgroup {
            process_tree: Some(pid),
            ..ContainerCgroup::default()
        }
    }

    /// CPU seconds (user + system) used by every process of the cgroup so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        if let Some(pid) = self.process_tree {
            return super::proctree::cpu_seconds(pid);
        }
        let path = self.cpu_usage.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        parse_cpu_usage(path, &text)
    }

    /// The CPUs the container may run on.
    pub fn cpus(&self) -> Option<Vec<usize>> {
        let text = std::fs::read_to_string(self.cpuset.as_ref()?).ok()?;
        parse_cpu_list(&text)
    }
}

/// Finds the CPU-usage and cpuset files of the cgroup `/proc/PID/cgroup`
/// (`proc_cgroup`) names, below `root`; `exists` says whether a file is there.
pub fn locate(proc_cgroup: &str, root: &Path, exists: &dyn Fn(&Path) -> bool) -> ContainerCgroup {
    let mut found = ContainerCgroup::default();
    let first = |candidates: Vec<PathBuf>| candidates.into_iter().find(|p| exists(p));
    for line in proc_cgroup.lines() {
        // hierarchy-ID:controller-list:path
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            // cgroup v2 (unified): one hierarchy at the root, or at `unified` on hybrid hosts.
            for base in [root.to_path_buf(), root.join("unified")] {
                let dir = base.join(rel);
                if found.cpu_usage.is_none() {
                    found.cpu_usage = first(vec![dir.join("cpu.stat")])
                        .filter(|_| exists(&dir.join("cgroup.controllers")));
                }
                if found.cpuset.is_none() {
                    found.cpuset = first(vec![dir.join("cpuset.cpus.effective")]);
                }
            }
            continue;
        }
        let names: Vec<&str> = controllers.split(',').collect();
        // v1: mounted under the controller list as named (`cpu,cpuacct`), or per controller.
        let mounts = |c: &str| vec![root.join(controllers).join(rel), root.join(c).join(rel)];
        if names.contains(&"cpuacct") {
            found.cpu_usage = first(
                mounts("cpuacct")
                    .into_iter()
                    .map(|d| d.join("cpuacct.usage"))
                    .collect(),
            )
            .or(found.cpu_usage);
        }
        if names.contains(&"cpuset") {
            found.cpuset = first(
                mounts("cpuset")
                    .into_iter()
                    .flat_map(|d| [d.join("cpuset.effective_cpus"), d.join("cpuset.cpus")])
                    .collect(),
            )
            .or(found.cpuset);
        }
    }
    found
}

/// Seconds of CPU from `cpuacct.usage` (ns) or `cpu.stat` (`usage_usec`).
pub fn parse_cpu_usage(path: &Path, text: &str) -> Option<f64> {
    if path.file_name().is_some_and(|n| n == "cpu.stat") {
        let usec: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        Some(usec as f64 / 1e6)
    } else {
        let ns: u64 = text.trim().parse().ok()?;
        Some(ns as f64 / 1e9)
    }
}

/// A kernel CPU list (`0-2,5`) as ascending CPU numbers; `None` if malformed or empty.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
}

/// CPU numbers as a kernel CPU list (`0-2,5`), as `--cpuset-cpus` takes it.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[5, 0, 1, 2]), "0-2,5");
        assert_eq!(format_cpu_list(&[1]), "1");
        assert_eq!(format_cpu_list(&[0, 2]), "0,2");
    }

    #[test]
    fn cpu_usage_of_v1_and_v2() {
        let v1 = parse_cpu_usage(Path::new("/x/cpuacct.usage"), "2500000000\n");
        assert_eq!(v1, Some(2.5));
        let stat = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n";
        assert_eq!(parse_cpu_usage(Path::new("/x/cpu.stat"), stat), Some(1.5));
        assert_eq!(
            parse_cpu_usage(Path::new("/x/cpu.stat"), "nr_periods 0"),
            None
        );
    }

    #[test]
    fn locates_v1_split_and_joint_mounts() {
        // This machine: cpu and cpuacct mounted separately (ENVIRONMENT.md).
        let proc = "12:cpuset:/libpod_parent/libpod-abc\n\
                    4:cpuacct:/libpod_parent/libpod-abc\n\
                    3:cpu:/libpod_parent/libpod-abc\n\
                    1:name=systemd:/libpod_parent/libpod-abc\n";
        let root = Path::new("/cg");
        let cg = locate(proc, root, &|p| !p.ends_with("cpuset.effective_cpus"));
        assert_eq!(
            cg.cpu_usage.unwrap(),
            Path::new("/cg/cpuacct/libpod_parent/libpod-abc/cpuacct.usage")
        );
        assert_eq!(
            cg.cpuset.unwrap(),
            Path::new("/cg/cpuset/libpod_parent/libpod-abc/cpuset.cpus")
        );
        // Debian's usual v1 layout: `cpu,cpuacct` mounted together.
        let proc = "3:cpu,cpuacct:/machine.slice/libpod-abc.scope\n";
        let joint = Path::new("/cg/cpu,cpuacct/machine.slice/libpod-abc.scope/cpuacct.usage");
        let cg = locate(proc, root, &|p| p == joint);
        assert_eq!(cg.cpu_usage.as_deref(), Some(joint));
        assert_eq!(cg.cpuset, None);
    }

    #[test]
    fn locates_v2() {
        let proc = "0::/machine.slice/libpod-abc.scope/container\n";
        let dir = Path::new("/cg/machine.slice/libpod-abc.scope/container");
        let cg = locate(proc, Path::new("/cg"), &|p| p.starts_with(dir));
        assert_eq!(cg.cpu_usage.unwrap(), dir.join("cpu.stat"));
        assert_eq!(cg.cpuset.unwrap(), dir.join("cpuset.cpus.effective"));
    }

    #[test]
    fn reads_this_process_cgroup() {
        // Whatever the host, the counter of our own cgroup is readable and grows.
        let cg = ContainerCgroup::of_pid(std::process::id());
        if let Some(secs) = cg.cpu_seconds() {
            assert!(secs >= 0.0);
        }
    }
}
