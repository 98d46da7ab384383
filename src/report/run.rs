//! `ocibench run`'s report: the image, its start-up time, memory and CPU beside
//! the load's ab-style text (`bench`), or one JSON document. A pure function of
//! finished results, like every renderer here.

use std::io::{self, Write};

use serde::Serialize;

use crate::loadgen::BenchResult;
use crate::oci::pull::ImageSize;
use crate::report::units::human_bytes;

/// What `ocibench run` measured; serializes as `run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub image: ImageSize,
    /// The OCI runtime podman ran the container with (`None`: podman's default).
    pub runtime: Option<String>,
    /// How the load reached the service (`published port (root, netavark)`,
    /// `host network, port 41234`).
    pub network: String,
    /// podman's storage driver (`overlay`, `vfs`).
    pub storage_driver: String,
    /// The container's CPU over the load, in percent of one core, from its
    /// cgroup or (rootless on cgroup v1) its processes' CPU time.
    pub service_cpu_percent: Option<f64>,
    /// Figures that could not be measured (null) and why, each said once.
    pub notes: Vec<String>,
    /// From `podman run` to the first 2xx of the health path.
    pub startup_ms: f64,
    pub peak_memory_bytes: Option<u64>,
    pub cpu_percent_peak: Option<f64>,
    pub cpu_percent_mean: Option<f64>,
    pub bench: BenchResult,
}

/// The load's ab-style text, a blank line, then the run's own figures;
/// `health_path` is what the start-up time waited for.
pub fn write_text<W: Write + ?Sized>(
    r: &RunReport,
    health_path: &str,
    out: &mut W,
) -> io::Result<()> {
    super::bench::write_summary(&r.bench, out)?;
    writeln!(out)?;
    writeln!(out, "Image:                  {}", r.image.reference)?;
    writeln!(
        out,
        "Image size:             {} compressed, {} uncompressed",
        human_bytes(r.image.compressed_bytes),
        human_bytes(r.image.uncompressed_bytes)
    )?;
    writeln!(out, "Network:                {}", r.network)?;
    writeln!(out, "Storage driver:         {}", r.storage_driver)?;
    writeln!(
        out,
        "Start-up time:          {:.1} ms (podman run to the first 2xx of {health_path})",
        r.startup_ms
    )?;
    match r.peak_memory_bytes {
        Some(m) => writeln!(
            out,
            "Peak memory:            {} ({m} bytes, podman stats)",
            human_bytes(m)
        )?,
        None if !r.notes.is_empty() => {
            writeln!(out, "Peak memory:            not measured (see notes)")?
        }
        None => writeln!(
            out,
            "Peak memory:            unknown (podman stats gave nothing)"
        )?,
    }
    match (
        r.cpu_percent_mean,
        r.cpu_percent_peak,
        r.service_cpu_percent,
    ) {
        (Some(mean), Some(peak), _) => writeln!(
            out,
            "Container CPU:          {mean:.1}% mean, {peak:.1}% peak (100% = one core)"
        )?,
        (_, _, Some(cpu)) => writeln!(
            out,
            "Container CPU:          {cpu:.1}% over the load (its processes' CPU time; 100% = one core)"
        )?,
        _ => {}
    }
    for note in &r.notes {
        writeln!(out, "Note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::result::Tally;
    use std::time::Duration;

    fn report(memory: Option<u64>, cpu: Option<(f64, f64)>) -> RunReport {
        let mut t = Tally::new();
        t.response(200, 10, Duration::from_millis(2));
        let bench = t.into_result("http://127.0.0.1:4000/", 1, true, Duration::from_secs(1));
        let mut image = super::super::sample::image("x", 2_000_000, 1_100_000);
        image.reference = "oci:/tmp/x:1".into();
        RunReport {
            image,
            runtime: Some("runc".into()),
            network: "published port (root, netavark)".into(),
            storage_driver: "overlay".into(),
            service_cpu_percent: None,
            notes: Vec::new(),
            startup_ms: 123.45,
            peak_memory_bytes: memory,
            cpu_percent_mean: cpu.map(|c| c.0),
            cpu_percent_peak: cpu.map(|c| c.1),
            bench,
        }
    }

    fn text(r: &RunReport) -> String {
        let mut buf = Vec::new();
        write_text(r, "/health", &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn run_lines_follow_the_bench_text() {
        let t = text(&report(Some(1_781_760), Some((0.5, 0.9))));
        // ab's text ends with the connection set-up block, then a blank line.
        let tail = t
            .split("Connect (ms):           no connection opened in the measured run\n\n")
            .nth(1)
            .expect("a blank line after ab's text");
        assert!(
            tail.starts_with("Image:                  oci:/tmp/x:1\n"),
            "{t}"
        );
        assert!(tail.contains(
            "Start-up time:          123.5 ms (podman run to the first 2xx of /health)\n"
        ));
        assert!(tail.contains("Peak memory:            1.8 MB (1781760 bytes, podman stats)\n"));
        assert!(tail.ends_with("Container CPU:          0.5% mean, 0.9% peak (100% = one core)\n"));
    }

    #[test]
    fn unknown_memory_and_cpu() {
        let t = text(&report(None, None));
        assert!(t.contains("Peak memory:            unknown (podman stats gave nothing)\n"));
        assert!(!t.contains("Container CPU"));
    }

    #[test]
    fn rootless_lines_say_what_was_not_measured() {
        let mut r = report(None, None);
        r.network = "host network, port 41234".into();
        r.storage_driver = "vfs".into();
        r.service_cpu_percent = Some(42.25);
        r.notes = vec!["Peak memory is not measured (null): no cgroup.".into()];
        let t = text(&r);
        assert!(
            t.contains("Network:                host network, port 41234\n"),
            "{t}"
        );
        assert!(t.contains("Storage driver:         vfs\n"), "{t}");
        assert!(
            t.contains("Peak memory:            not measured (see notes)\n"),
            "{t}"
        );
        assert!(t.contains(
            "Container CPU:          42.2% over the load (its processes' CPU time; 100% = one core)\n"
        ));
        assert!(
            t.ends_with("Note: Peak memory is not measured (null): no cgroup.\n"),
            "{t}"
        );
    }

    #[test]
    fn json_keeps_its_fields_in_order() {
        let v = serde_json::to_string(&report(None, None)).unwrap();
        let keys = [
            "\"image\"",
            "\"runtime\"",
            "\"network\"",
            "\"storage_driver\"",
            "\"service_cpu_percent\"",
            "\"notes\"",
            "\"startup_ms\"",
            "\"peak_memory_bytes\"",
            "\"cpu_percent_peak\"",
            "\"cpu_percent_mean\"",
            "\"bench\"",
        ];
        let at: Vec<usize> = keys.iter().map(|k| v.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{v}");
    }
}
