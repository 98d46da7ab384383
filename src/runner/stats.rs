//! Memory and CPU of a running container, sampled with `podman stats`.
//!
//! podman 4.3's `--format json` gives human strings (`"mem_usage": "426kB /
//! 25.28GB"`, rounded to 4 digits); `--format '{{json .ContainerStats}}'` gives
//! the raw numbers (`"MemUsage": 294912`, `"CPUNano"`, `"SystemNano"`), so that
//! is asked for first and the strings are the fallback. CPU is computed from
//! the CPU-time deltas between samples: `podman stats --no-stream` alone only
//! knows the average since the container started.
//!
//! One sample is taken at once, one every `interval`, and one when stopped, so
//! even a load shorter than the interval is measured. Each sample costs podman
//! ~40 ms of CPU: 500 ms keeps that under 10% of one core during a benchmark.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;

/// Default time between samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// What the sampler measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUsage {
    /// Highest memory use seen, in bytes (`None`: no sample succeeded).
    pub peak_memory_bytes: Option<u64>,
    /// Highest CPU use between two samples, in percent of one core.
    pub cpu_percent_peak: Option<f64>,
    /// CPU use from the first sample to the last, in percent of one core.
    pub cpu_percent_mean: Option<f64>,
    /// Samples taken.
    pub samples: u32,
}

/// One reading of `podman stats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub memory_bytes: u64,
    pub cpu: CpuReading,
}

/// CPU as podman reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuReading {
    /// Cumulative CPU time and the wall clock of the reading, both in ns.
    Counters { cpu_nanos: u64, system_nanos: u64 },
    /// podman's own percentage (the fallback format).
    Percent(f64),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawStats {
    mem_usage: u64,
    #[serde(rename = "CPUNano")]
    cpu_nano: u64,
    system_nano: u64,
}

/// One `{{json .ContainerStats}}` line.
pub fn parse_raw(line: &str) -> Option<Sample> {
    let r: RawStats = serde_json::from_str(line.trim()).ok()?;
    Some(Sample {
        memory_bytes: r.mem_usage,
        cpu: CpuReading::Counters {
            cpu_nanos: r.cpu_nano,
            system_nanos: r.system_nano,
        },
    })
}

#[derive(Deserialize)]
struct HumanStats {
    mem_usage: String,
    #[serde(default)]
    cpu_percent: String,
}

/// `podman stats --format json` (an array with one object per container).
pub fn parse_human(json: &str) -> Option<Sample> {
    let all: Vec<HumanStats> = serde_json::from_str(json.trim()).ok()?;
    let s = all.first()?;
    let used = s.mem_usage.split('/').next()?.trim();
    Some(Sample {
        memory_bytes: parse_size(used)?,
        cpu: CpuReading::Percent(
            s.cpu_percent
                .trim()
                .trim_end_matches('%')
                .parse()
                .unwrap_or(0.0),
        ),
    })
}

/// `426kB`, `12.3MB`, `1.5GiB`, `512B` (go-units' decimal and binary sizes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "pb" => 1e15,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        "pib" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult).round() as u64)
}

/// Folds samples into peaks and a mean.
#[derive(Debug, Default)]
pub struct UsageAccumulator {
    usage: ResourceUsage,
    first: Option<(u64, u64)>,
    last: Option<(u64, u64)>,
    percent_sum: f64,
    percent_count: u32,
}

impl UsageAccumulator {
    pub fn add(&mut self, s: Sample) {
        let u = &mut self.usage;
        u.samples += 1;
        u.peak_memory_bytes = Some(u.peak_memory_bytes.unwrap_or(0).max(s.memory_bytes));
        match s.cpu {
            CpuReading::Counters {
                cpu_nanos,
                system_nanos,
            } => {
                let p = self
                    .last
                    .and_then(|(c0, t0)| percent(c0, t0, cpu_nanos, system_nanos));
                if let Some(p) = p {
                    u.cpu_percent_peak = Some(u.cpu_percent_peak.unwrap_or(0.0).max(p));
                }
                self.first.get_or_insert((cpu_nanos, system_nanos));
                self.last = Some((cpu_nanos, system_nanos));
            }
            CpuReading::Percent(p) => {
                u.cpu_percent_peak = Some(u.cpu_percent_peak.unwrap_or(0.0).max(p));
                self.percent_sum += p;
                self.percent_count += 1;
            }
        }
    }

    pub fn finish(mut self) -> ResourceUsage {
        self.usage.cpu_percent_mean = match (self.first, self.last) {
            (Some((c0, t0)), Some((c1, t1))) => percent(c0, t0, c1, t1),
            _ if self.percent_count > 0 => Some(self.percent_sum / self.percent_count as f64),
            _ => None,
        };
        self.usage
    }
}

fn percent(c0: u64, t0: u64, c1: u64, t1: u64) -> Option<f64> {
    let dt = t1.checked_sub(t0).filter(|d| *d > 0)?;
    let dc = c1.saturating_sub(c0);
    Some(dc as f64 * 100.0 / dt as f64)
}

/// A background thread sampling one container; `stop` returns what it saw.
pub struct StatsSampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<ResourceUsage>>,
}

impl StatsSampler {
    pub(crate) fn start(podman: PathBuf, container: String, interval: Duration) -> StatsSampler {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ocibench-stats".into())
            .spawn(move || {
                let mut acc = UsageAccumulator::default();
                let mut raw = true;
                loop {
                    if let Some(s) = sample(&podman, &container, &mut raw) {
                        acc.add(s);
                    }
                    match rx.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        // Stopped: one last sample, so short loads are measured too.
                        _ => {
                            if let Some(s) = sample(&podman, &container, &mut raw) {
                                acc.add(s);
                            }
                            return acc.finish();
                        }
                    }
                }
            })
            .ok();
        StatsSampler {
            stop: Some(tx),
            thread,
        }
    }

    /// A sampler that takes no sample (`stop` returns nothing measured): for
    /// containers `podman stats` cannot read.
    pub(crate) fn idle() -> StatsSampler {
        StatsSampler {
            stop: None,
            thread: None,
        }
    }

    /// Stops sampling (after one last sample) and returns the usage seen.
    pub fn stop(mut self) -> ResourceUsage {
        self.finish()
    }

    fn finish(&mut self) -> ResourceUsage {
        drop(self.stop.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for StatsSampler {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

/// One `podman stats --no-stream`; switches `raw` off for good if podman does not
/// know the raw template.
fn sample(podman: &std::path::Path, container: &str, raw: &mut bool) -> Option<Sample> {
    if *raw {
        let out = super::podman::detached(podman)
            .args([
                "stats",
                "--no-stream",
                "--format",
                "{{json .ContainerStats}}",
                container,
            ])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        match parse_raw(&String::from_utf8_lossy(&out.stdout)) {
            Some(s) => return Some(s),
            None => *raw = false,
        }
    }
    let out = super::podman::detached(podman)
        .args(["stats", "--no-stream", "--format", "json", container])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_human(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from podman 4.3.1 on Debian 12 (cgroup v1, runc).
    const RAW: &str = r#"{"AvgCPU":0.9273604652478649,"ContainerID":"f059c4ec25d6b155624c23644689f19aa7a39ba520cfe8a09097b902fbeeaed3","Name":"ocibench-probe","PerCPU":[9125787,24031400],"CPU":0.9273604652478649,"CPUNano":33157187,"CPUSystemNano":8000000,"SystemNano":1795564226935475524,"MemUsage":294912,"MemLimit":25276510208,"MemPerc":0.0011667433422302914,"NetInput":472,"NetOutput":1096,"BlockInput":0,"BlockOutput":0,"PIDs":1,"UpTime":33157187,"Duration":33157187}"#;
    const HUMAN: &str = r#"[
 {
  "id": "f059c4ec25d6",
  "name": "ocibench-probe",
  "cpu_time": "33.157187ms",
  "cpu_percent": "3.10%",
  "avg_cpu": "3.10%",
  "mem_usage": "426kB / 25.28GB",
  "mem_percent": "0.00%",
  "net_io": "472B / 1.006kB",
  "block_io": "0B / 0B",
  "pids": "1"
 }
]"#;

    #[test]
    fn raw_container_stats() {
        let s = parse_raw(RAW).unwrap();
        assert_eq!(s.memory_bytes, 294912);
        assert_eq!(
            s.cpu,
            CpuReading::Counters {
                cpu_nanos: 33157187,
                system_nanos: 1795564226935475524
            }
        );
        assert_eq!(parse_raw("<no value>"), None);
        assert_eq!(parse_raw(""), None);
    }

    #[test]
    fn human_json_stats() {
        let s = parse_human(HUMAN).unwrap();
        assert_eq!(s.memory_bytes, 426_000);
        assert_eq!(s.cpu, CpuReading::Percent(3.10));
        assert_eq!(parse_human("[]"), None);
        assert_eq!(parse_human("Error: no container"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("426kB"), Some(426_000));
        assert_eq!(parse_size("12.3MB"), Some(12_300_000));
        assert_eq!(parse_size("25.28GB"), Some(25_280_000_000));
        assert_eq!(parse_size("288KiB"), Some(288 * 1024));
        assert_eq!(parse_size("1.5GiB"), Some(1_610_612_736));
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("12 MB"), Some(12_000_000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("3XB"), None);
    }

    #[test]
    fn peaks_and_mean_from_counters() {
        let mut acc = UsageAccumulator::default();
        let s = |mem, cpu, t| Sample {
            memory_bytes: mem,
            cpu: CpuReading::Counters {
                cpu_nanos: cpu,
                system_nanos: t,
            },
        };
        acc.add(s(100, 0, 1_000_000_000));
        // 0.25 s of CPU in 0.5 s: 50% of a core.
        acc.add(s(300, 250_000_000, 1_500_000_000));
        // 0.5 s of CPU in 0.5 s: 100%.
        acc.add(s(200, 750_000_000, 2_000_000_000));
        let u = acc.finish();
        assert_eq!(u.peak_memory_bytes, Some(300));
        assert_eq!(u.cpu_percent_peak, Some(100.0));
        assert_eq!(u.cpu_percent_mean, Some(75.0));
        assert_eq!(u.samples, 3);
    }

    #[test]
    fn one_sample_has_memory_but_no_cpu() {
        let mut acc = UsageAccumulator::default();
        acc.add(parse_raw(RAW).unwrap());
        let u = acc.finish();
        assert_eq!(u.peak_memory_bytes, Some(294912));
        assert_eq!((u.cpu_percent_peak, u.cpu_percent_mean), (None, None));
        assert_eq!(
            UsageAccumulator::default().finish(),
            ResourceUsage::default()
        );
    }

    #[test]
    fn percentages_from_the_fallback() {
        let mut acc = UsageAccumulator::default();
        for (m, p) in [(10, 20.0), (30, 60.0)] {
            acc.add(Sample {
                memory_bytes: m,
                cpu: CpuReading::Percent(p),
            });
        }
        let u = acc.finish();
        assert_eq!(u.peak_memory_bytes, Some(30));
        assert_eq!(u.cpu_percent_peak, Some(60.0));
        assert_eq!(u.cpu_percent_mean, Some(40.0));
    }
}
