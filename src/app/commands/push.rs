//! `ocibench push IMAGE DEST`: copy any image ocibench can read to a registry,
//! sending only the blobs the registry lacks.

use crate::app::args::SourceSettings;
use crate::app::explain::UserError;
use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
use ocibench::oci::location::ImageLocation;
use ocibench::oci::push::{PushOptions, PushReport, push, push_layout};
use ocibench::oci::reference::ImageReference;
use ocibench::report;

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Image to push: docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    /// Destination: docker://REGISTRY/REPO[:TAG] (or a bare reference)
    pub dest: String,
    #[command(flatten)]
    pub source: crate::app::args::SourceArgs,
    #[command(flatten)]
    pub creds: crate::app::args::CopyCredsArgs,
    #[command(flatten)]
    pub net: crate::app::args::NetArgs,
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn parse_registry_dest(dest: &str) -> Result<ImageReference, UserError> {
    match dest.parse::<ImageLocation>() {
        Ok(ImageLocation::Registry(r)) => Ok(r),
        Ok(other) => Err(UserError::usage(format!(
            "push writes to registries; {other} is a file-system destination"
        ))
        .with_hint("use `ocibench build --output` for oci:/oci-archive:/docker-archive:, or a docker://REGISTRY/REPO:TAG destination")),
        Err(e) => Err(UserError::usage(format!("destination: {e}"))),
    }
}

pub fn run(args: PushArgs, ctx: &Context) -> anyhow::Result<()> {
    let target = parse_registry_dest(&args.dest)?;
    let settings = SourceSettings::new(&args.image, &args.source)?;
    let sources: Vec<&ImageReference> = registry_of(&settings.location).into_iter().collect();
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds(&sources, &[&target], &args.creds)?;
    let show = ctx.show_progress() && !args.json;
    let names: Vec<&ImageReference> = sources.iter().copied().chain([&target]).collect();
    if let ImageLocation::OciDir { path, .. } = &settings.location
        && args.source.platform.is_none()
        && let Some(report) = push_layout(
            &ctx.registry_client(settings.tls, &names)?,
            &settings.location,
            path,
            &target,
            ctx.reporter(show).as_ref(),
        )?
    {
        return print_report(&report, args.json);
    }
    let (store, stored) = ctx.fetch(&settings, show)?;
    let report = push(
        &store,
        ctx.registry_client(settings.tls, &names)?.as_ref(),
        &stored.manifest_digest,
        &stored.manifest_media_type,
        &target,
        &PushOptions::default(),
        ctx.reporter(show).as_ref(),
    )?;
    print_report(&report, args.json)
}

fn print_report(report: &PushReport, json: bool) -> anyhow::Result<()> {
    write_stdout(|out| {
        if json {
            output::json(out, report)
        } else {
            report::image::write_pushed(out, report)
        }
    })
}
