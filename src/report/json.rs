//! `compare --json`: the `Report` as one pretty-printed JSON document
//! (DESIGN.md's schema, plus `noise`, `warnings`, `load` and `method`).

use std::io;

use super::Report;

/// Writes the report as one JSON document and a newline.
pub fn write<W: io::Write>(report: &Report, mut out: W) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut out, report)?;
    writeln!(out)?;
    out.flush()
}

/// The JSON document as bytes.
pub fn render(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    write(report, &mut out).expect("writing to a Vec<u8> cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::super::analyze;
    use super::super::sample::origin;
    use super::*;
    use serde_json::Value;

    #[test]
    fn follows_the_design_schema() {
        let report = analyze(origin());
        let v: Value = serde_json::from_slice(&render(&report)).unwrap();
        let c = &v["candidates"][0];
        assert_eq!(c["name"], "slim-stretch");
        assert_eq!(c["base"], "localhost:5000/python:slim-stretch");
        assert_eq!(c["image"]["uncompressed_bytes"], 123_400_000);
        assert_eq!(c["image"]["compressed_bytes"], 45_600_000);
        assert!(
            c["image"]["digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert_eq!(c["startup_ms"], 410.0);
        assert_eq!(c["peak_memory_bytes"], 31_400_000);
        for k in ["median", "low", "high"] {
            assert!(c["requests_per_second"][k].is_f64(), "{k}");
        }
        assert!(c["latency_ms"]["mean"].is_f64() && c["latency_ms"]["p99"].is_f64());
        assert_eq!(c["runs"].as_array().unwrap().len(), 5);
        assert_eq!(c["runs"][0]["requests"], 1000);
        let s = &v["significant"][0];
        assert!(s["faster"].is_string() && s["slower"].is_string() && s["ratio"].is_f64());
        assert_eq!(v["recommendation"]["name"], "slim-stretch");
        assert!(v["recommendation"]["reason"].is_string());
        assert!(v["warnings"].is_array() && v["noise"].is_array());
        assert_eq!(v["noise"][0]["reason"], "not_significant");
        assert_eq!(v["load"]["concurrency"], 100);
        // One document, and it reads back into the same report.
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back.recommendation, report.recommendation);
        assert_eq!(back.significant.len(), report.significant.len());
    }

    #[test]
    fn untested_pairs_have_null_intervals_and_p_values() {
        use super::super::sample::{candidate, input};
        let report = analyze(input(vec![
            candidate("a", 100, 40, &[2000.0, 2010.0]),
            candidate("b", 200, 80, &[1500.0, 1510.0]),
        ]));
        let v: serde_json::Value = serde_json::from_slice(&render(&report)).unwrap();
        let n = &v["noise"][0];
        assert_eq!(n["reason"], "too_few_runs");
        for k in ["ratio_low", "ratio_high", "p_value", "p_value_unadjusted"] {
            assert!(n[k].is_null(), "{k}: {}", n[k]);
        }
        assert_eq!(n["rounds"], 0);
        assert!(n["ratio"].is_f64());
    }
}
