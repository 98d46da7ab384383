//! The human text of `ocibench copy`: what went where, whether the digest was kept,
//! how each blob got there; the destination's digest on the last line.

use std::io::Write;

use crate::oci::copy::CopyReport;
use crate::report::units::human_bytes;

pub fn write_copied(out: &mut dyn Write, r: &CopyReport) -> std::io::Result<()> {
    writeln!(out, "Copied {} to {}", r.source, r.destination)?;
    let platforms: Vec<&str> = r
        .images
        .iter()
        .filter_map(|i| i.platform.as_deref())
        .collect();
    if platforms.is_empty() {
        writeln!(out, "  images      {}", r.images.len())?;
    } else {
        writeln!(
            out,
            "  images      {} ({})",
            r.images.len(),
            platforms.join(", ")
        )?;
    }
    writeln!(
        out,
        "  blobs       {} copied ({}), {} mounted, {} already there",
        r.blobs_copied,
        human_bytes(r.bytes_copied),
        r.blobs_mounted,
        r.blobs_skipped
    )?;
    writeln!(out, "  source      {}", r.source_digest)?;
    match &r.digest {
        Some(d) if r.digest_kept => writeln!(out, "  digest      {d} (kept)"),
        Some(d) => writeln!(
            out,
            "  digest      {d} (changed: the destination holds the manifest converted to {})",
            r.media_type
        ),
        None => writeln!(
            out,
            "  digest      none: a docker-archive holds no manifest (the image was converted, as skopeo does)"
        ),
    }
}
