//! `ocibench push IMAGE DEST`: copy any image ocibench can read to a registry,
//! sending only the blobs the registry lacks.

use std::io::Write;

use crate::app::args::SourceSettings;
use crate::app::commands::pull::fetch;
use crate::app::explain::UserError;
use crate::app::globals::Context;
use ocibench::oci::location::ImageLocation;
use ocibench::oci::pull::human_bytes;
use ocibench::oci::push::{PushOptions, PushReport, push as push_image};
use ocibench::oci::reference::{ImageReference, TlsMode};
use ocibench::oci::store::BlobStore;

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Image to push: docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    pub image: String,
    /// Destination: docker://REGISTRY/REPO[:TAG] (or a bare reference)
    pub dest: String,
    #[command(flatten)]
    pub source: crate::app::args::SourceArgs,
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
    let show = ctx.show_progress() && !args.json;
    if let ImageLocation::OciDir { path, .. } = &settings.location
        && args.source.platform.is_none()
        && let Some(report) =
            push_layout_in_place(ctx, &settings.location, path, &target, settings.tls, show)?
    {
        return print_report(&report, args.json);
    }
    let (store, stored) = fetch(&settings, ctx, show)?;
    let report = push_stored(
        ctx,
        &store,
        &stored.manifest_digest,
        &stored.manifest_media_type,
        &target,
        settings.tls,
        show,
    )?;
    print_report(&report, args.json)
}

/// `push oci:DIR` of a single image: its blobs go up straight from the layout, with no
/// import into the cache (which would inflate every layer to measure it, for nothing a
/// push needs). `None` (take the import path) for an index, which needs a platform
/// chosen, or a layout missing a blob, which the import path reports properly.
fn push_layout_in_place(
    ctx: &Context,
    location: &ImageLocation,
    dir: &std::path::Path,
    target: &ImageReference,
    tls: TlsMode,
    show_progress: bool,
) -> anyhow::Result<Option<PushReport>> {
    use ocibench::oci::manifest::{ImageManifest, OCI_MANIFEST};
    use ocibench::oci::push::{LayoutBlobs, PushBlobs};
    let client = ctx.registry_client(tls);
    let source = ocibench::oci::source::open(location, &client, dir)?;
    let top = source.fetch_manifest(None)?;
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&top.bytes) else {
        return Ok(None);
    };
    let blobs = LayoutBlobs::new(dir);
    let complete = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .all(|d| blobs.blob_size(&d.digest) == Some(d.size));
    if !complete || blobs.blob_size(&top.digest) != Some(top.bytes.len() as u64) {
        return Ok(None);
    }
    let media_type = manifest
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| (!top.media_type.is_empty()).then(|| top.media_type.clone()))
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    let reporter = crate::app::terminal::reporter(show_progress, "push");
    Ok(Some(push_image(
        &blobs,
        &client,
        &top.digest,
        &media_type,
        target,
        &PushOptions::default(),
        reporter.as_ref(),
    )?))
}

/// Pushes a stored image; shared with `build --output docker://...`.
pub fn push_stored(
    ctx: &Context,
    store: &BlobStore,
    manifest_digest: &ocibench::oci::digest::Digest,
    media_type: &str,
    target: &ImageReference,
    tls: TlsMode,
    show_progress: bool,
) -> anyhow::Result<PushReport> {
    let client = ctx.registry_client(tls);
    let reporter = crate::app::terminal::reporter(show_progress, "push");
    Ok(push_image(
        store,
        &client,
        manifest_digest,
        media_type,
        target,
        &PushOptions::default(),
        reporter.as_ref(),
    )?)
}

pub fn print_report(report: &PushReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "Pushed {}", report.reference)?;
        writeln!(out, "  digest      {}", report.digest)?;
        writeln!(
            out,
            "  blobs       {} uploaded ({}), {} mounted, {} already there",
            report.uploaded_blobs,
            human_bytes(report.uploaded_bytes),
            report.mounted_blobs,
            report.existing_blobs
        )?;
    }
    Ok(())
}
