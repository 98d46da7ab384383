//! `ocibench build`: layer an application onto a base (or scratch), reproducibly,
//! and write the image to every output asked for.
//!
//! The base's blobs are reused byte for byte; each `--layer` becomes one new
//! layer built in a single streaming pass; the config is the base's, edited as
//! JSON; the manifest keeps the base's media-type family. Every output is written
//! to a temporary name and renamed, so a failed build leaves no partial output.
//! `--platform A,B` builds one image per platform on the base index's images
//! and writes the index of them to every output.

use serde::Serialize;
use serde_json::json;

use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
pub use args::BuildArgs;
use args::BuildSettings;
use ocibench::oci::build::ImageBuilder;
use ocibench::oci::digest::Digest;
use ocibench::oci::publish::{Published, Target, publish};
use ocibench::oci::pull::ImageSize;
use ocibench::oci::reference::ImageReference;
use ocibench::oci::store::BlobStore;
use ocibench::report;

mod args;

#[derive(Serialize)]
struct BuildReport<'a> {
    image: &'a ImageSize,
    outputs: Vec<serde_json::Value>,
}

/// `build --json` of a multi-platform build: the index, then each platform's image.
#[derive(Serialize)]
struct IndexBuildReport<'a> {
    index: IndexSummary<'a>,
    images: Vec<&'a ImageSize>,
    outputs: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct IndexSummary<'a> {
    digest: &'a Digest,
    media_type: &'a str,
    manifest_bytes: u64,
    platforms: &'a [String],
}

pub fn run(args: BuildArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = BuildSettings::from_args(&args)?;
    // A single-platform build writes no index for `index:` annotations to go on;
    // dropping them silently would lose what the user asked for.
    if let Some((key, _)) = settings
        .spec
        .index_annotations
        .first()
        .filter(|_| settings.spec.platforms.len() == 1)
    {
        return Err(crate::app::explain::UserError::usage(format!(
            "--annotation index:{key}=...: this build writes one image, not an index"
        ))
        .with_hint("index annotations go on a multi-platform build's index (--platform A,B); use --annotation KEY=VALUE for the image's manifest")
        .into());
    }
    let sources: Vec<&ImageReference> = settings
        .spec
        .from
        .as_ref()
        .and_then(registry_of)
        .into_iter()
        .collect();
    let destinations: Vec<&ImageReference> = settings
        .outputs
        .iter()
        .filter_map(|t| match t {
            Target::Registry(r) => Some(r),
            Target::File(_) => None,
        })
        .collect();
    let ctx = &ctx
        .with_net(&args.net)?
        .bind_creds(&sources, &destinations, &args.creds)?;
    let show = ctx.show_progress() && !settings.json;
    let store = BlobStore::open(&ctx.cache_dir)?;
    let names: Vec<&ImageReference> = sources.iter().chain(&destinations).copied().collect();
    let client = ctx.registry_client(settings.tls, &names)?;
    let reporter = ctx.reporter(show);
    let builder = ImageBuilder::new(&store, client.clone(), reporter.as_ref());
    let reference = settings.outputs[0].to_string();
    let (digest, media_type, images, index) = if settings.spec.platforms.len() > 1 {
        let built = builder.build_index(&settings.spec)?;
        let mut images: Vec<ImageSize> = built.images.into_iter().map(|i| i.size).collect();
        for i in &mut images {
            i.reference = reference.clone();
        }
        let index = (built.manifest_bytes, built.platforms);
        (built.digest, built.media_type, images, Some(index))
    } else {
        let mut built = builder.build(&settings.spec)?;
        built.size.reference = reference;
        (
            built.manifest_digest,
            built.media_type,
            vec![built.size],
            None,
        )
    };
    let published = publish(
        &store,
        &digest,
        &media_type,
        &settings.outputs,
        &client,
        reporter.as_ref(),
    )?;
    let mut outputs = Vec::new();
    for (target, done) in settings.outputs.iter().zip(&published) {
        outputs.push(match done {
            Published::File(report) => serde_json::to_value(report)?,
            Published::Registry(report) => {
                let mut v = serde_json::to_value(report)?;
                v["destination"] = json!(target.to_string());
                v
            }
        });
    }

    write_stdout(|stdout| match (&index, settings.json) {
        (None, true) => output::json(
            stdout,
            &BuildReport {
                image: &images[0],
                outputs,
            },
        ),
        (Some((manifest_bytes, platforms)), true) => output::json(
            stdout,
            &IndexBuildReport {
                index: IndexSummary {
                    digest: &digest,
                    media_type: &media_type,
                    manifest_bytes: *manifest_bytes,
                    platforms,
                },
                images: images.iter().collect(),
                outputs,
            },
        ),
        (None, false) => {
            writeln!(stdout, "Built {digest}")?;
            report::image::write_summary(stdout, &images[0])?;
            write_outputs(stdout, &settings.outputs, &published)
        }
        (Some((_, platforms)), false) => {
            writeln!(
                stdout,
                "Built index {digest} ({} platforms: {})",
                platforms.len(),
                platforms.join(", ")
            )?;
            writeln!(stdout, "  media type    {media_type}")?;
            write_outputs(stdout, &settings.outputs, &published)?;
            for image in &images {
                writeln!(stdout, "Image for {}", image.platform)?;
                report::image::write_summary(stdout, image)?;
            }
            Ok(())
        }
    })
}

fn write_outputs(
    stdout: &mut dyn std::io::Write,
    targets: &[Target],
    published: &[Published],
) -> std::io::Result<()> {
    for (target, done) in targets.iter().zip(published) {
        writeln!(stdout, "  wrote         {target} ({})", done.digest())?;
    }
    Ok(())
}
