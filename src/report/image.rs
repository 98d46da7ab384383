//! The human text of images: `size` (the summary and a per-layer table), `pull`
//! (what was transferred, then the summary), `build` (the summary) and `push`.
//! An image chosen from an index says so beside its platform, with the index's
//! platforms, so nobody mistakes one platform's size for the whole index's.

use std::io::Write;

use crate::oci::pull::ImageSize;
use crate::oci::push::PushReport;
use crate::report::units::{human_bytes, thousands};

/// The human summary of a size object.
pub fn write_summary(out: &mut dyn Write, s: &ImageSize) -> std::io::Result<()> {
    writeln!(out, "  digest        {}", s.digest)?;
    writeln!(out, "  media type    {}", s.media_type)?;
    match (&s.index_digest, &s.platforms) {
        (Some(index), Some(platforms)) => {
            writeln!(
                out,
                "  platform      {} (one of {} in the index: {})",
                s.platform,
                platforms.len(),
                platforms.join(", ")
            )?;
            writeln!(out, "  index         {index}")?;
        }
        _ => writeln!(out, "  platform      {}", s.platform)?,
    }
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
            l.digest.short_named(),
            thousands(l.compressed_bytes),
            thousands(l.uncompressed_bytes),
            l.media_type
        )?;
    }
    Ok(())
}

/// `size`: the reference, the summary and the per-layer table.
pub fn write_sized(out: &mut dyn Write, s: &ImageSize) -> std::io::Result<()> {
    writeln!(out, "{}", s.reference)?;
    write_summary(out, s)?;
    writeln!(out)?;
    write_layers(out, s)
}

/// `pull`: what this pull transferred (the rest was cached), then the summary.
pub fn write_pulled(
    out: &mut dyn Write,
    s: &ImageSize,
    transferred_blobs: usize,
    transferred_bytes: u64,
) -> std::io::Result<()> {
    writeln!(out, "Pulled {}", s.reference)?;
    // Layers and the config are the blobs a pull may transfer.
    let blobs = s.layers.len() + 1;
    writeln!(
        out,
        "  transferred   {} blobs, {} ({} already cached)",
        transferred_blobs,
        human_bytes(transferred_bytes),
        blobs - transferred_blobs.min(blobs)
    )?;
    write_summary(out, s)
}

/// `push`: where it went and how each blob got there.
pub fn write_pushed(out: &mut dyn Write, r: &PushReport) -> std::io::Result<()> {
    writeln!(out, "Pushed {}", r.reference)?;
    writeln!(out, "  digest      {}", r.digest)?;
    writeln!(
        out,
        "  blobs       {} uploaded ({}), {} mounted, {} already there",
        r.uploaded_blobs,
        human_bytes(r.uploaded_bytes),
        r.mounted_blobs,
        r.existing_blobs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;

    #[test]
    fn an_image_of_an_index_names_its_platform_among_the_index_s() {
        let mut s = crate::report::sample::image("multi", 2_000, 1_000);
        let mut out = Vec::new();
        write_summary(&mut out, &s).unwrap();
        let plain = String::from_utf8(out).unwrap();
        assert!(plain.contains("  platform      linux/amd64\n"), "{plain}");
        assert!(!plain.contains("index"), "{plain}");
        let index = Digest::of(b"index");
        s.index_digest = Some(index.clone());
        s.platforms = Some(vec!["linux/amd64".into(), "linux/arm64/v8".into()]);
        let mut out = Vec::new();
        write_summary(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!(
                "  platform      linux/amd64 (one of 2 in the index: linux/amd64, linux/arm64/v8)\n  index         {index}\n"
            )),
            "{text}"
        );
    }
}
