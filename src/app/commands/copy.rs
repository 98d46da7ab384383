//! `ocibench copy SRC DEST`: an image copied unchanged between any two transports,
//! as `skopeo copy` does (the digest kept wherever the destination can hold the
//! manifest; `--all` for a whole multi-platform index); prints the digest at the end.

use crate::app::args::{CopyCredsArgs, NetArgs, SourceArgs, SourceSettings, TlsArgs};
use crate::app::explain::UserError;
use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
use ocibench::oci::copy::{CopyOptions, copy};
use ocibench::oci::location::ImageLocation;
use ocibench::oci::publish::{Destination, Target};
use ocibench::oci::pull::{PullOptions, open_source};
use ocibench::oci::reference::ImageReference;
use ocibench::oci::store::BlobStore;
use ocibench::report;

#[derive(Debug, Clone, clap::Args)]
pub struct CopyArgs {
    /// Source: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub src: String,
    /// Destination, in the same syntax (a docker-archive converts the image, as skopeo does)
    pub dest: String,
    /// Copy every image of a multi-platform index, and the index itself unchanged
    #[arg(long, short = 'a', conflicts_with = "platform")]
    pub all: bool,
    #[command(flatten)]
    pub source: SourceArgs,
    /// --tls-verify for the source registry only, as skopeo's [default: --tls-verify]
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub src_tls_verify: Option<bool>,
    /// --tls-verify for the destination registry only, as skopeo's [default: --tls-verify]
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub dest_tls_verify: Option<bool>,
    #[command(flatten)]
    pub creds: CopyCredsArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// DEST as a registry or a file destination; a mistake is a usage error with a hint.
fn parse_target(dest: &str) -> Result<Target, UserError> {
    let hint = "destinations are docker://REGISTRY/REPO:TAG (or REGISTRY/REPO:TAG), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]";
    match dest.parse::<ImageLocation>() {
        Ok(ImageLocation::Registry(r)) => Ok(Target::Registry(r)),
        Ok(_) => Destination::parse(dest)
            .map(Target::File)
            .map_err(|e| UserError::usage(format!("destination: {e}")).with_hint(hint)),
        Err(e) => Err(UserError::usage(format!("destination: {e}")).with_hint(hint)),
    }
}

pub fn run(args: CopyArgs, ctx: &Context) -> anyhow::Result<()> {
    let target = parse_target(&args.dest)?;
    let settings = SourceSettings::new(&args.src, &args.source)?;
    let sources: Vec<&ImageReference> = registry_of(&settings.location).into_iter().collect();
    let destinations: Vec<&ImageReference> = match &target {
        Target::Registry(r) => vec![r],
        Target::File(_) => Vec::new(),
    };
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds(&sources, &destinations, &args.creds)?;
    let show = ctx.show_progress() && !args.json;
    let store = BlobStore::open(&ctx.cache_dir)?;
    // One client per side, as skopeo's --src-tls-verify/--dest-tls-verify need;
    // a mount happens within the destination's registry, over its client.
    let tls = |side: Option<bool>| match side {
        Some(verify) => TlsArgs { tls_verify: verify }.mode(),
        None => settings.tls,
    };
    let source_client = ctx.registry_client(tls(args.src_tls_verify), &sources)?;
    let client = ctx.registry_client(tls(args.dest_tls_verify), &destinations)?;
    let source = open_source(&settings.location, &source_client, &store)?;
    let opts = CopyOptions {
        pull: PullOptions {
            platform: settings.platform.clone(),
            platform_required: settings.platform_required,
            ..PullOptions::default()
        },
        all: args.all,
        ..CopyOptions::default()
    };
    let report = copy(
        &*source,
        &target,
        &client,
        &store,
        &opts,
        ctx.reporter(show).as_ref(),
    )?;
    write_stdout(|out| {
        if args.json {
            output::json(out, &report)
        } else {
            report::copy::write_copied(out, &report)
        }
    })
}
