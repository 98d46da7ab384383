//! The real `Lab`: each candidate is the application built on its base into
//! the blob store (`oci::build::ImageBuilder`), exported and loaded into podman
//! (`image::load_into_podman`); each trial is a fresh podman container loaded
//! by the load generator (`trial::run_trial`). What to build and how to load
//! comes from `ocibench.toml` (`config`).

use crate::loadgen::{self, LoadConfig};
use crate::oci::build::{BuildSpec, ImageBuilder, LayerSpec, NixSpec};
use crate::oci::digest::Digest;
use crate::oci::image_config::ConfigEdit;
use crate::oci::location::ImageLocation;
use crate::oci::manifest::Platform;
use crate::oci::push::{PushError, PushOptions, push};
use crate::oci::reference::ImageReference;
use crate::oci::registry::RegistryClient;
use crate::oci::store::BlobStore;
use crate::progress::Reporter;
use crate::runner::{LoadedImage, PodmanRunner};
use std::sync::Arc;

use super::config::{AppConfig, Candidate, CompareConfig, LoadSettings};
use super::experiment::{ExperimentError, ExperimentObserver, Lab, Prepared, Pushed};
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
    /// For `compare --push`: the client with the destination's credentials.
    push_client: Arc<RegistryClient>,
}

/// Words the history line (`created_by`) of an application layer from its
/// destination: the caller says how its layers were made.
pub type LayerHistory = fn(dest: &str) -> String;

impl<'a> PodmanLab<'a> {
    /// A lab for `config`'s application; `builder` builds into `store`;
    /// `push_client` (with the destination's credentials) serves `Lab::push`.
    pub fn new(
        runner: &'a PodmanRunner,
        store: &'a BlobStore,
        builder: ImageBuilder<'a>,
        progress: &'a dyn Reporter,
        config: &'a CompareConfig,
        layer_history: LayerHistory,
        push_client: Arc<RegistryClient>,
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
                warmup_for: config.load.warmup_duration,
            },
            push_client,
        }
    }
}

/// A candidate's image: loaded into podman (removed when dropped), and its
/// manifest in the blob store, for `compare --push`.
pub struct LabImage {
    loaded: LoadedImage,
    manifest: Digest,
    media_type: String,
}

impl Lab for PodmanLab<'_> {
    type Image = LabImage;

    fn prepare(
        &self,
        c: &Candidate,
        observer: &dyn ExperimentObserver,
    ) -> Result<Prepared<LabImage>, ExperimentError> {
        let from: ImageLocation = c.base.parse().map_err(|source| ExperimentError::Base {
            name: c.name.clone(),
            base: c.base.clone(),
            source,
        })?;
        let built = self
            .builder
            .build(&build_spec(&c.app(self.app), from, self.layer_history))
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
            image: LabImage {
                loaded: image,
                manifest: built.manifest_digest,
                media_type: built.media_type,
            },
            size: built.size,
        })
    }

    fn trial(
        &self,
        candidate: &Candidate,
        image: &LabImage,
        observer: &dyn TrialObserver,
    ) -> Result<TrialOutcome, TrialError> {
        run_trial(
            self.runner,
            &image.loaded,
            &trial_spec(&self.spec, candidate),
            &|url: &str| load_config(self.load, url),
            observer,
        )
    }

    fn push(
        &self,
        candidate: &Candidate,
        image: &LabImage,
        dest: &ImageReference,
    ) -> Result<Pushed, ExperimentError> {
        self.push_image(candidate, image, dest)
    }
}

impl PodmanLab<'_> {
    fn push_image(
        &self,
        candidate: &Candidate,
        image: &LabImage,
        dest: &ImageReference,
    ) -> Result<Pushed, ExperimentError> {
        let fail = |source: PushError| ExperimentError::Push {
            name: candidate.name.clone(),
            dest: format!("docker://{dest}"),
            source: Box::new(source),
        };
        let report = push(
            self.store,
            &self.push_client,
            &image.manifest,
            &image.media_type,
            dest,
            &PushOptions::default(),
            self.progress,
        )
        .map_err(fail)?;
        Ok(Pushed {
            candidate: candidate.name.clone(),
            reference: format!("docker://{dest}"),
            digest: report.digest.to_string(),
        })
    }
}

/// `spec` with `candidate`'s limits: its `--cpus`/`--memory` first, so
/// `[app] podman_args` (placed after) still have the last word.
pub fn trial_spec(spec: &TrialSpec, candidate: &Candidate) -> TrialSpec {
    let mut spec = spec.clone();
    let mut args = candidate.resources.podman_args();
    args.append(&mut spec.extra_args);
    spec.extra_args = args;
    spec
}

/// The load `[load]` describes, against `url`; `compare` checks it once with a
/// placeholder URL before building anything.
pub fn load_config(load: &LoadSettings, url: &str) -> Result<LoadConfig, loadgen::ConfigError> {
    let builder = LoadConfig::builder(url);
    let builder = match load.duration {
        Some(d) => builder.duration(d),
        None => builder.requests(load.requests),
    };
    builder
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::config::Resources;

    #[test]
    fn a_candidates_limits_come_before_the_apps_podman_args() {
        let mut spec = TrialSpec::new(8080);
        spec.extra_args = vec!["--memory=2g".into()];
        let mut c = Candidate::plain("a", "x");
        c.resources = Resources {
            cpus: Some(0.5),
            memory: Some("512m".into()),
        };
        // podman takes the last of a repeated flag: [app] podman_args win.
        assert_eq!(
            trial_spec(&spec, &c).extra_args,
            ["--cpus=0.5", "--memory=512m", "--memory=2g"]
        );
        assert_eq!(
            trial_spec(&spec, &Candidate::plain("b", "x")).extra_args,
            ["--memory=2g"]
        );
    }

    #[test]
    fn a_warmup_by_time_is_the_same_load_for_that_long_uncounted() {
        let load = LoadSettings {
            requests: 1000,
            duration: Some(std::time::Duration::from_secs(3)),
            concurrency: 50,
            keepalive: true,
            warmup: 100,
            warmup_duration: None,
            repeats: 5,
            timeout: std::time::Duration::from_secs(30),
        };
        let measured = load_config(&load, "http://127.0.0.1:1/").unwrap();
        assert_eq!(
            measured.stop,
            loadgen::Stop::Duration(std::time::Duration::from_secs(3))
        );
        let w = crate::compare::trial::warmup_by_time(&measured, std::time::Duration::from_secs(1));
        assert_eq!(
            w.stop,
            loadgen::Stop::Duration(std::time::Duration::from_secs(1))
        );
        assert_eq!((w.warmup, w.concurrency, w.keepalive), (0, 50, true));
    }
}
