//! `ocibench pull IMAGE`: fetch an image into the cache, verified, and report what
//! was transferred and the image's exact sizes.

use serde::Serialize;

use crate::app::args::{ImageArgs, SourceSettings};
use crate::app::globals::Context;
use crate::app::output::{self, write_stdout};
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
    write_stdout(|out| {
        if args.json {
            let report = PullReport {
                image: &size,
                transferred_blobs: stored.transferred_blobs,
                transferred_bytes: stored.transferred_bytes,
            };
            output::json(out, &report)
        } else {
            report::image::write_pulled(
                out,
                &size,
                stored.transferred_blobs,
                stored.transferred_bytes,
            )
        }
    })
}
