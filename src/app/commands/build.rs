//! `ocibench build`: layer an application onto a base (or scratch), reproducibly,
//! and write the image to every output asked for.
//!
//! The base's blobs are reused byte for byte; each `--layer` becomes one new
//! layer built in a single streaming pass; the config is the base's, edited as
//! JSON; the manifest keeps the base's media-type family. Every output is written
//! to a temporary name and renamed, so a failed build leaves no partial output.

use std::io::Write;

use serde::Serialize;
use serde_json::json;

use crate::app::args::SourceSettings;
use crate::app::commands::build_args::{BuildArgs, BuildOutput, BuildSettings};
use crate::app::commands::pull::fetch;
use crate::app::commands::push::push_stored;
use crate::app::globals::Context;
use ocibench::oci::build::layer::{self, LayerBuilder};
use ocibench::oci::build::nix;
use ocibench::oci::digest::Digest;
use ocibench::oci::image_config::{self as config, AddedLayer, ConfigEdit};
use ocibench::oci::manifest::{Descriptor, ImageManifest, MediaFamily};
use ocibench::oci::publish::{ExportImage, export};
use ocibench::oci::pull::{self as image, ImageSize};
use ocibench::oci::store::BlobStore;

/// A built image in the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest_digest: Digest,
    pub media_type: String,
    pub size: ImageSize,
}

#[derive(Serialize)]
struct BuildReport<'a> {
    image: &'a ImageSize,
    outputs: Vec<serde_json::Value>,
}

pub fn run(args: BuildArgs, ctx: &Context) -> anyhow::Result<()> {
    let settings = BuildSettings::from_args(&args)?;
    let show = ctx.show_progress() && !settings.json;
    let (store, mut built) = build_image(&settings, ctx, show)?;
    built.size.reference = settings.outputs[0].to_string();

    let reporter = crate::app::terminal::reporter(show, "write");
    let mut outputs = Vec::new();
    for out in &settings.outputs {
        match out {
            BuildOutput::File(dest) => {
                let image =
                    ExportImage::from_store(&store, &built.manifest_digest, &built.media_type)?;
                let report = export(&store, &image, dest, reporter.as_ref())?;
                outputs.push(serde_json::to_value(&report)?);
            }
            BuildOutput::Registry(target) => {
                let report = push_stored(
                    ctx,
                    &store,
                    &built.manifest_digest,
                    &built.media_type,
                    target,
                    settings.tls,
                    show,
                )?;
                let mut v = serde_json::to_value(&report)?;
                v["destination"] = json!(out.to_string());
                outputs.push(v);
            }
        }
    }

    let mut stdout = std::io::stdout().lock();
    if settings.json {
        serde_json::to_writer_pretty(
            &mut stdout,
            &BuildReport {
                image: &built.size,
                outputs,
            },
        )?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "Built {}", built.size.digest)?;
        crate::app::commands::pull::write_summary(&mut stdout, &built.size)?;
        for (o, v) in settings.outputs.iter().zip(&outputs) {
            let digest = v["manifest_digest"]
                .as_str()
                .or(v["digest"].as_str())
                .unwrap_or_default();
            writeln!(stdout, "  wrote         {o} ({digest})")?;
        }
    }
    Ok(())
}

/// Builds the image into the cache; shared with `compare`.
pub fn build_image(
    settings: &BuildSettings,
    ctx: &Context,
    show_progress: bool,
) -> anyhow::Result<(BlobStore, BuiltImage)> {
    let epoch = layer::source_date_epoch()?;
    let edit = ConfigEdit {
        created_epoch: epoch,
        ..settings.config.clone()
    };
    edit.validate()?;

    // The base: its manifest, config and blobs, verified into the cache.
    let (store, family, base_layers, base_config) = match &settings.from {
        None => (
            BlobStore::open(&ctx.cache_dir)?,
            MediaFamily::Oci,
            Vec::new(),
            config::scratch_config(&settings.platform),
        ),
        Some(location) => {
            let pull = SourceSettings {
                location: location.clone(),
                platform: settings.platform.clone(),
                tls: settings.tls,
            };
            let (store, base) = fetch(&pull, ctx, show_progress)?;
            let config = store.read_blob(&base.manifest.config.digest)?;
            (
                store,
                base.manifest.family(),
                base.manifest.layers.clone(),
                config,
            )
        }
    };

    let reporter = crate::app::terminal::reporter(show_progress, "layer");
    let mut layers = base_layers;
    let mut added = Vec::new();

    // Nix closures: one layer per store path (popular ones alone), under the app.
    if !settings.nix_closures.is_empty() {
        let closure = if settings.nix_graphs.is_empty() {
            nix::Closure::of(&settings.nix_closures)?
        } else {
            let texts = settings
                .nix_graphs
                .iter()
                .map(|f| {
                    std::fs::read_to_string(f).map_err(|e| {
                        crate::app::explain::UserError::usage(format!(
                            "--nix-graph {}: {e}",
                            f.display()
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            nix::Closure::from_registration(&texts)?
        };
        for (i, group) in closure.layers(settings.max_layers)?.iter().enumerate() {
            let mut builder = LayerBuilder::new();
            for path in group {
                builder.add(path, &path.to_string_lossy());
            }
            let stats = builder
                .mtime(epoch)
                .progress_id(1000 + i as u64)
                .write_to_store(&store, reporter.as_ref())?;
            layers.push(Descriptor::new(
                family.layer_gzip(),
                stats.digest.clone(),
                stats.compressed_bytes,
            ));
            let names: Vec<String> = group
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            added.push(AddedLayer {
                diff_id: stats.diff_id,
                created_by: format!("ocibench build --nix-closure: {}", names.join(" ")),
            });
        }
    }

    // The new layers, one per --layer, in order.
    for (i, spec) in settings.layers.iter().enumerate() {
        let stats = LayerBuilder::new()
            .add(&spec.src, &spec.dest)
            .mtime(epoch)
            .progress_id(i as u64)
            .write_to_store(&store, reporter.as_ref())?;
        layers.push(Descriptor::new(
            family.layer_gzip(),
            stats.digest.clone(),
            stats.compressed_bytes,
        ));
        // The history names the destination only: source paths differ between
        // machines, and the config must not.
        added.push(AddedLayer {
            diff_id: stats.diff_id,
            created_by: format!("ocibench build --layer {}", spec.dest),
        });
    }

    let config = config::edit_config(&base_config, &edit, &added)?;
    let config_digest = store.put_bytes(&config)?;
    let manifest = ImageManifest::new(
        family,
        Descriptor::new(family.config(), config_digest, config.len() as u64),
        layers,
    );
    let bytes = manifest.to_bytes();
    let manifest_digest = store.put_bytes(&bytes)?;
    let size = image::size_of(&store, "(built)", &manifest_digest)?;
    Ok((
        store,
        BuiltImage {
            manifest_digest,
            media_type: family.manifest().to_string(),
            size,
        },
    ))
}
