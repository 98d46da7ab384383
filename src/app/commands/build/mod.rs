//! `ocibench build`: layer an application onto a base (or scratch), reproducibly,
//! and write the image to every output asked for.
//!
//! The base's blobs are reused byte for byte; each `--layer` becomes one new
//! layer built in a single streaming pass; the config is the base's, edited as
//! JSON; the manifest keeps the base's media-type family. Every output is written
//! to a temporary name and renamed, so a failed build leaves no partial output.

use serde::Serialize;
use serde_json::json;

use crate::app::globals::{Context, registry_of};
use crate::app::output::{self, write_stdout};
use crate::app::terminal;
pub use args::BuildArgs;
use args::BuildSettings;
use ocibench::oci::build::ImageBuilder;
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

pub fn run(args: BuildArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = BuildSettings::from_args(&args)?;
    // A single-platform build writes no index for `index:` annotations to go on;
    // dropping them silently would lose what the user asked for.
    if let Some((key, _)) = settings.index_annotations.first() {
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
    let client = ctx.registry_client(settings.tls);
    let reporter = terminal::reporter(show);
    let mut built =
        ImageBuilder::new(&store, client.clone(), reporter.as_ref()).build(&settings.spec)?;
    built.size.reference = settings.outputs[0].to_string();
    let published = publish(
        &store,
        &built.manifest_digest,
        &built.media_type,
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

    write_stdout(|stdout| {
        if settings.json {
            output::json(
                stdout,
                &BuildReport {
                    image: &built.size,
                    outputs,
                },
            )
        } else {
            writeln!(stdout, "Built {}", built.size.digest)?;
            report::image::write_summary(stdout, &built.size)?;
            for (target, done) in settings.outputs.iter().zip(&published) {
                writeln!(stdout, "  wrote         {target} ({})", done.digest())?;
            }
            Ok(())
        }
    })
}
