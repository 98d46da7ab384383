//! The real `Lab`: each candidate is the application built on its base into
//! the blob store (`oci::build::ImageBuilder`), exported and loaded into podman
//! (`image::load_into_podman`); each trial is a fresh podman container loaded
//! by the load generator (`trial::run_trial`). What to build and how to load
//! comes from `ocibench.toml` (`config`).

use crate::loadgen::{self, LoadConfig};
use crate::oci::build::{BuildSpec, ImageBuilder, LayerSpec, NixSpec};
use crate::oci::image_config::ConfigEdit;
use crate::oci::location::ImageLocation;
use crate::oci::manifest::Platform;
use crate::oci::store::BlobStore;
use crate::progress::Reporter;
use crate::runner::{LoadedImage, PodmanRunner};

use super::config::{AppConfig, Candidate, CompareConfig, LoadSettings};
use super::experiment::{ExperimentError, ExperimentObserver, Lab, Prepared};
use super::image::{StoredManifest, load_into_podman};
use super::trial::{TrialError, TrialObserver, TrialOutcome, TrialSpec, run_trial};

/// Candidates built into `store` and run in podman.
pub struct PodmanLab<'a> {
    runner: &'a PodmanRunner,
    store: &'a BlobStore,
    builder: ImageBuilder<'a>,
    /// For the export of each built image to podman.
    progress: &'a dyn Reporter,
    app: &'a AppConfig,
    load: &'a LoadSettings,
    layer_history: LayerHistory,
    spec: TrialSpec,
}

/// Words the history line (`created_by`) of an application layer from its
/// destination: the caller says how its layers were made.
pub type LayerHistory = fn(dest: &str) -> String;

impl<'a> PodmanLab<'a> {
    /// A lab for `config`'s application; `builder` builds into `store`.
    pub fn new(
        runner: &'a PodmanRunner,
        store: &'a BlobStore,
        builder: ImageBuilder<'a>,
        progress: &'a dyn Reporter,
        config: &'a CompareConfig,
        layer_history: LayerHistory,
    ) -> Self {
        let app = &config.app;
        PodmanLab {
            runner,
            store,
            builder,
            progress,
            app,
            load: &config.load,
            layer_history,
            spec: TrialSpec {
                container_port: app.port,
                health_path: app.health.clone(),
                path: app.path.clone(),
                startup_timeout: app.startup_timeout,
                env: Vec::new(),
                extra_args: app.podman_args.clone(),
                name_prefix: Some("compare".into()),
            },
        }
    }
}

impl Lab for PodmanLab<'_> {
    type Image = LoadedImage;

    fn prepare(
        &self,
        c: &Candidate,
        observer: &dyn ExperimentObserver,
    ) -> Result<Prepared<LoadedImage>, ExperimentError> {
        let from: ImageLocation = c.base.parse().map_err(|source| ExperimentError::Base {
            name: c.name.clone(),
            base: c.base.clone(),
            source,
        })?;
        let built = self
            .builder
            .build(&build_spec(self.app, from, self.layer_history))
            .map_err(|source| ExperimentError::Build {
                candidate: Box::new(c.clone()),
                source,
            })?;
        observer.loading(c, &built.manifest_digest);
        let image = load_into_podman(
            self.runner,
            self.store,
            StoredManifest {
                digest: &built.manifest_digest,
                media_type: &built.media_type,
            },
            "compare",
            self.progress,
        )
        .map_err(|source| ExperimentError::Load {
            name: c.name.clone(),
            source,
        })?;
        Ok(Prepared {
            image,
            size: built.size,
        })
    }

    fn trial(
        &self,
        image: &LoadedImage,
        observer: &dyn TrialObserver,
    ) -> Result<TrialOutcome, TrialError> {
        run_trial(
            self.runner,
            image,
            &self.spec,
            &|url: &str| load_config(self.load, url),
            observer,
        )
    }
}

/// The load `[load]` describes, against `url`; `compare` checks it once with a
/// placeholder URL before building anything.
pub fn load_config(load: &LoadSettings, url: &str) -> Result<LoadConfig, loadgen::ConfigError> {
    LoadConfig::builder(url)
        .requests(load.requests)
        .concurrency(load.concurrency)
        .keepalive(load.keepalive)
        .warmup(load.warmup)
        .timeout(Some(load.timeout))
        .build()
}

/// The application of `[app]` on `from`, for this machine's platform.
fn build_spec(app: &AppConfig, from: ImageLocation, history: LayerHistory) -> BuildSpec {
    BuildSpec {
        from: Some(from),
        layers: app
            .layers
            .iter()
            .map(|l| LayerSpec {
                src: l.src.clone(),
                dest: l.dest.clone(),
                created_by: history(&l.dest),
            })
            .collect(),
        nix: NixSpec::default(),
        config: ConfigEdit {
            entrypoint: app.entrypoint.clone(),
            cmd: app.cmd.clone(),
            env: app.env.clone(),
            workdir: app.workdir.clone(),
            expose: vec![format!("{}/tcp", app.port)],
            labels: vec![(
                "org.opencontainers.image.description".into(),
                "ocibench compare candidate".into(),
            )],
            user: app.user.clone(),
            created_epoch: 0,
        },
        platform: Platform::host(),
        platform_required: false,
    }
}
