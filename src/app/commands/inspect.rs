//! `ocibench inspect IMAGE`: what an image is (config, history, layers, the platforms
//! of its index, annotations) from any transport, reading no layer; `--raw` and
//! `--config` print the manifest and the config exactly as stored, as skopeo's do;
//! `--referrers` lists the OCI 1.1 referrers of a registry image (signatures,
//! SBOMs), as `oras discover` does.

use crate::app::args::{NetArgs, SourceArgs, SourceSettings};
use crate::app::explain::UserError;
use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
use ocibench::oci::inspect::inspect;
use ocibench::oci::location::ImageLocation;
use ocibench::oci::pull::open_source;
use ocibench::oci::registry::RegistryClient;
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
    /// List the image's referrers (OCI 1.1: signatures, SBOMs, attestations whose subject it is)
    #[arg(long, conflicts_with_all = ["raw", "config"])]
    pub referrers: bool,
    /// With --referrers: only referrers of this artifact type
    #[arg(long, value_name = "TYPE", requires = "referrers")]
    pub artifact_type: Option<String>,
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
    if args.referrers {
        return referrers(&args, &settings.location, &client);
    }
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

/// `inspect --referrers`: the referrers of the manifest the reference names (the
/// index, for a multi-platform image, as `oras discover` asks).
fn referrers(
    args: &InspectArgs,
    location: &ImageLocation,
    client: &RegistryClient,
) -> anyhow::Result<()> {
    let ImageLocation::Registry(image) = location else {
        return Err(UserError::usage(format!(
            "--referrers: {location} is not in a registry"
        ))
        .with_hint("referrers live in registries (the referrers API or its tag schema); name the image as REGISTRY/REPOSITORY:TAG")
        .into());
    };
    let subject = match image.digest() {
        Some(d) => d,
        None => {
            client
                .fetch_manifest(image, &image.manifest_reference())?
                .digest
        }
    };
    let found = client.referrers(image, &subject, args.artifact_type.as_deref())?;
    write_stdout(|out| {
        if args.json {
            output::json(out, &found)
        } else {
            report::referrers::write_referrers(out, &location.to_string(), &found)
        }
    })
}
