//! `ocibench pull` and `ocibench size`: fetch an image into the cache, verified,
//! and report its exact sizes.

use std::io::Write;

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::Context;
use crate::error::UserError;
use crate::oci::image::{self, ImageSize, PullOptions, StoredImage, human_bytes};
use crate::oci::manifest::Platform;
use crate::oci::reference::TlsMode;
use crate::oci::source;
use crate::oci::store::BlobStore;
use crate::oci::transport::ImageLocation;
use crate::report::units::thousands;

/// `--tls-verify`, as podman spells it.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Require HTTPS and verify certificates (false: skip verification)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

impl TlsArgs {
    pub fn mode(&self) -> TlsMode {
        if self.tls_verify {
            TlsMode::Auto
        } else {
            TlsMode::Insecure
        }
    }
}

/// Which image of a multi-platform index to read, and how to reach its registry:
/// shared by every command that reads an image (pull, size, push, run).
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Platform to choose from a multi-platform index [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

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

/// The parsed, validated form of `PullArgs`.
pub struct PullSettings {
    pub location: ImageLocation,
    pub platform: Platform,
    pub tls: TlsMode,
}

impl PullSettings {
    /// `image` in any transport, with the source flags.
    pub fn new(image: &str, source: &SourceArgs) -> anyhow::Result<Self> {
        let location: ImageLocation = image.parse().map_err(|e: crate::oci::transport::TransportError| {
            UserError::usage(e.to_string()).with_hint(
                "images are docker://REGISTRY/REPO:TAG (or REPO:TAG), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]",
            )
        })?;
        let platform = parse_platform(source.platform.as_deref())?;
        Ok(PullSettings {
            location,
            platform,
            tls: source.tls.mode(),
        })
    }
}

pub fn parse_platform(p: Option<&str>) -> Result<Platform, UserError> {
    match p {
        None => Ok(Platform::host()),
        Some(s) => Ok(s
            .parse()
            .map_err(|e: crate::oci::manifest::PlatformParseError| {
                UserError::usage(e.to_string())
            })?),
    }
}

/// Pulls the image into the cache; shared by `pull`, `size` and later `build --from`.
pub fn fetch(
    settings: &PullSettings,
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
    let reporter = crate::ui::reporter(show_progress, "pull");
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
    let settings = PullSettings::new(&args.image, &args.source)?;
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
    let settings = PullSettings::new(&args.image, &args.source)?;
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
