//! `ocibench pull` and `ocibench size`: fetch an image into the cache, verified,
//! and report its exact sizes.

use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use crate::app::args::{SourceArgs, SourceSettings};
use crate::app::globals::Context;
use ocibench::oci::pull::{self as image, ImageSize, PullOptions, StoredImage, human_bytes};
use ocibench::oci::source;
use ocibench::oci::store::BlobStore;
use ocibench::report::units::thousands;

#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// Image: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

pub type SizeArgs = PullArgs;

/// Pulls the image into the cache; shared by `pull`, `size` and later `build --from`.
pub fn fetch(
    settings: &SourceSettings,
    ctx: &Context,
    show_progress: bool,
) -> anyhow::Result<(BlobStore, StoredImage)> {
    let store = BlobStore::open(&ctx.cache_dir)?;
    let client = ctx.registry_client(settings.tls);
    let scratch = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(store.root().join("ocibench"))
        .context("creating a scratch directory in the cache")?;
    let src = source::open(&settings.location, &client, scratch.path())?;
    let reporter = crate::app::terminal::reporter(show_progress, "pull");
    let opts = PullOptions {
        platform: settings.platform.clone(),
        ..PullOptions::default()
    };
    let stored = image::pull(src.as_ref(), &store, &opts, reporter.as_ref())?;
    Ok((store, stored))
}

#[derive(Serialize)]
struct PullReport<'a> {
    image: &'a ImageSize,
    transferred_blobs: usize,
    transferred_bytes: u64,
}

pub fn pull(args: PullArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let (store, stored) = fetch(&settings, ctx, ctx.show_progress() && !args.json)?;
    let size = image::size_of(&store, &stored.name, &stored.manifest_digest)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = PullReport {
            image: &size,
            transferred_blobs: stored.transferred_blobs,
            transferred_bytes: stored.transferred_bytes,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "Pulled {}", size.reference)?;
        let cached = stored.manifest.layers.len() + 1
            - stored
                .transferred_blobs
                .min(stored.manifest.layers.len() + 1);
        writeln!(
            out,
            "  transferred   {} blobs, {} ({} already cached)",
            stored.transferred_blobs,
            human_bytes(stored.transferred_bytes),
            cached
        )?;
        write_summary(&mut out, &size)?;
    }
    Ok(())
}

pub fn size(args: SizeArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let (store, stored) = fetch(&settings, ctx, ctx.show_progress() && !args.json)?;
    let size = image::size_of(&store, &stored.name, &stored.manifest_digest)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &size)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", size.reference)?;
        write_summary(&mut out, &size)?;
        writeln!(out)?;
        write_layers(&mut out, &size)?;
    }
    Ok(())
}

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

fn write_layers(out: &mut dyn Write, s: &ImageSize) -> std::io::Result<()> {
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
