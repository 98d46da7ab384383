//! `ocibench pull IMAGE`: fetch an image into the cache, verified, and report what
//! was transferred and the image's exact sizes.

use std::io::Write;

use serde::Serialize;

use crate::app::args::{ImageArgs, SourceSettings};
use crate::app::globals::Context;
use ocibench::oci::pull::ImageSize;
use ocibench::report;

#[derive(Serialize)]
struct PullReport<'a> {
    image: &'a ImageSize,
    transferred_blobs: usize,
    transferred_bytes: u64,
}

pub fn run(args: ImageArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds_to_source(&settings.location)?;
    let (_, stored, size) = ctx.fetch_sized(&settings, ctx.show_progress() && !args.json)?;
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
        report::image::write_pulled(
            &mut out,
            &size,
            stored.transferred_blobs,
            stored.transferred_bytes,
        )?;
    }
    Ok(())
}
