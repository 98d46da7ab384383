//! `ocibench pull` and `ocibench size`: fetch an image into the cache, verified,
//! and report its exact sizes.

use std::io::Write;

use serde::Serialize;

use crate::app::args::{SourceArgs, SourceSettings};
use crate::app::globals::Context;
use ocibench::oci::pull::{self as image, ImageSize};
use ocibench::report::{self, units::human_bytes};

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

#[derive(Serialize)]
struct PullReport<'a> {
    image: &'a ImageSize,
    transferred_blobs: usize,
    transferred_bytes: u64,
}

pub fn pull(args: PullArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let (store, stored) = ctx.fetch(&settings, ctx.show_progress() && !args.json)?;
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
        report::image::write_summary(&mut out, &size)?;
    }
    Ok(())
}

pub fn size(args: SizeArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let (store, stored) = ctx.fetch(&settings, ctx.show_progress() && !args.json)?;
    let size = image::size_of(&store, &stored.name, &stored.manifest_digest)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &size)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", size.reference)?;
        report::image::write_summary(&mut out, &size)?;
        writeln!(out)?;
        report::image::write_layers(&mut out, &size)?;
    }
    Ok(())
}
