//! The human text of an image's sizes (`size`, `pull`, `build`): a summary of
//! the size object and its per-layer table.

use std::io::Write;

use crate::oci::pull::ImageSize;
use crate::report::units::{human_bytes, thousands};

/// The human summary of a size object.
pub fn write_summary(out: &mut dyn Write, s: &ImageSize) -> std::io::Result<()> {
    writeln!(out, "  digest        {}", s.digest)?;
    writeln!(out, "  media type    {}", s.media_type)?;
    writeln!(out, "  platform      {}", s.platform)?;
    writeln!(out, "  layers        {}", s.layers.len())?;
    writeln!(
        out,
        "  compressed    {:>10}  ({} bytes: layers as pulled)",
        human_bytes(s.compressed_bytes),
        thousands(s.compressed_bytes)
    )?;
    writeln!(
        out,
        "  uncompressed  {:>10}  ({} bytes: layers on disk)",
        human_bytes(s.uncompressed_bytes),
        thousands(s.uncompressed_bytes)
    )?;
    writeln!(
        out,
        "  manifest      {} bytes, config {} bytes",
        s.manifest_bytes, s.config_bytes
    )
}

pub fn write_layers(out: &mut dyn Write, s: &ImageSize) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:<19} {:>14} {:>14}  MEDIA TYPE",
        "LAYER", "COMPRESSED", "UNCOMPRESSED"
    )?;
    for l in &s.layers {
        writeln!(
            out,
            "  {:<19} {:>14} {:>14}  {}",
            format!("sha256:{}", l.digest.short()),
            thousands(l.compressed_bytes),
            thousands(l.uncompressed_bytes),
            l.media_type
        )?;
    }
    Ok(())
}
