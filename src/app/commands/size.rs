//! `ocibench size IMAGE`: an image's exact compressed and uncompressed sizes, per
//! layer; a cached image is sized from the store's records, reading no layer data.

use crate::app::args::{ImageArgs, SourceSettings};
use crate::app::globals::Context;
use crate::app::output::{self, write_stdout};
use ocibench::report;

pub fn run(args: ImageArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds_to_source(&settings.location)?;
    let (_, _, size) = ctx.fetch_sized(&settings, ctx.show_progress() && !args.json)?;
    write_stdout(|out| {
        if args.json {
            output::json(out, &size)
        } else {
            report::image::write_sized(out, &size)
        }
    })
}
