//! `ocibench inspect IMAGE`: what an image is (config, history, layers, the platforms
//! of its index, annotations) from any transport, reading no layer; `--raw` and
//! `--config` print the manifest and the config exactly as stored, as skopeo's do.

use crate::app::args::{NetArgs, SourceArgs, SourceSettings};
use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
use ocibench::oci::inspect::inspect;
use ocibench::oci::pull::open_source;
use ocibench::oci::store::BlobStore;
use ocibench::report;

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// Image: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print the top manifest exactly as served (an index stays the index), as `skopeo inspect --raw`
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// Print the image's config blob exactly as stored, as `skopeo inspect --config --raw`
    #[arg(long, conflicts_with = "json")]
    pub config: bool,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds_to_source(&settings.location)?;
    let store = BlobStore::open(&ctx.cache_dir)?;
    let names: Vec<_> = registry_of(&settings.location).into_iter().collect();
    let client = ctx.registry_client(settings.tls, &names)?;
    let source = open_source(&settings.location, &client, &store)?;
    if args.raw && !args.config {
        // The top manifest only: an index needs no platform chosen.
        let top = source.fetch_manifest(None)?;
        return write_stdout(|out| out.write_all(&top.bytes));
    }
    let inspection = inspect(&*source, &settings.platform)?;
    write_stdout(|out| {
        if args.config {
            out.write_all(&inspection.config_bytes)
        } else if args.json {
            output::json(out, &inspection)
        } else {
            report::inspect::write_inspection(out, &inspection)
        }
    })
}
