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
use crate::oci::serve::{LocalRegistry, ServeOptions, ServedImage};
use crate::oci::store::BlobStore;
use crate::progress::Reporter;
use crate::report::Isolation;
use crate::runner::{LoadedImage, PodmanRunner};
use std::sync::Arc;

use super::config::{AppConfig, Candidate, ColdStartSettings, CompareConfig, LoadSettings};
use super::experiment::{
    ExperimentError, ExperimentObserver, Installed, Lab, Prepared, Pull, Pushed,
};
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
    isolation: Isolation,
    cold_start: ColdStartSettings,
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
        let allowed = loadgen::current_thread_cpus().unwrap_or_default();
        // Without a cgroup per container (rootless on cgroup v1) no CPU set can
        // be applied: the service and the generator share the CPUs.
        let isolate = config.load.isolate && runner.host().own_cgroups();
        let isolation = plan_isolation(&allowed, isolate);
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
                service_cpus: isolation.applied.then(|| isolation.service_cpus.clone()),
                warmup_for: config.load.warmup_duration,
                search: None, // per trial: it starts where an earlier one ended
                port_env: app.port_env.clone(),
            },
            isolation,
            cold_start: config.cold_start,
            push_client,
        }
    }
}

/// A candidate's built image: its manifest in the blob store.
pub struct LabImage {
    manifest: Digest,
    media_type: String,
}

impl Lab for PodmanLab<'_> {
    type Image = LabImage;
    type Node = LoadedImage;

    fn prepare(
        &self,
        c: &Candidate,
        _observer: &dyn ExperimentObserver,
    ) -> Result<Prepared<LabImage>, ExperimentError> {
        let from: ImageLocation = c.base.parse().map_err(|source| ExperimentError::Base {
            name: c.name.clone(),
            base: c.base.clone(),
            source,
        })?;
        let mut built = self
            .builder
            .build(&build_spec(&c.app(self.app), from, self.layer_history))
            .map_err(|source| ExperimentError::Build {
                candidate: Box::new(c.clone()),
                source,
            })?;
        // Built on one platform's image of an index: the report says which of how many.
        if let Some(index) = &built.base_index {
            built.size.chosen_from(index);
        }
        Ok(Prepared {
            image: LabImage {
                manifest: built.manifest_digest,
                media_type: built.media_type,
            },
            size: built.size,
        })
    }

    fn install(
        &self,
        _c: &Candidate,
        image: &LabImage,
        _observer: &dyn ExperimentObserver,
    ) -> Result<Installed<LoadedImage>, TrialError> {
        // A registry of this one image, for this one pull: podman fetches it
        // over the distribution API as a node would, and nothing else is served.
        let served = ServedImage {
            repository: format!("ocibench/compare/{}", image.manifest.short()),
            manifest: image.manifest.clone(),
            media_type: image.media_type.clone(),
        };
        let registry = LocalRegistry::start(
            self.store,
            std::slice::from_ref(&served),
            ServeOptions {
                bandwidth: self.cold_start.bandwidth,
            },
        )?;
        let pulled = self.runner.pull(&registry.reference(&served), false)?;
        drop(registry);
        // The pull left hundreds of MB of dirty pages; written back later they
        // would land in some run's load (the kernel waits 30 s). Flushed now,
        // outside the timings: a node does not wait for it, and the runs stay clean.
        rustix::fs::sync();
        let pull = Pull {
            took: pulled.elapsed,
            layers: pulled.layers_copied + pulled.layers_present,
            layers_present: pulled.layers_present,
            image_present: pulled.image.existed,
        };
        Ok(Installed {
            node: pulled.image,
            pull,
        })
    }

    fn trial(
        &self,
        candidate: &Candidate,
        node: &LoadedImage,
        previous_capacity: Option<f64>,
        observer: &dyn TrialObserver,
    ) -> Result<TrialOutcome, TrialError> {
        let mut spec = trial_spec(&self.spec, candidate);
        spec.search = self.load.slo.map(|s| s.search(previous_capacity));
        run_trial(
            self.runner,
            node,
            &spec,
            &|url: &str| {
                let cpus = self.isolation.applied;
                load_config_on(
                    self.load,
                    url,
                    cpus.then_some(&self.isolation.generator_cpus),
                )
            },
            observer,
        )
    }

    fn isolation(&self) -> Isolation {
        self.isolation.clone()
    }
    fn network(&self) -> Option<String> {
        let path = self.runner.network();
        Some(match (path, self.spec.port_env.as_deref()) {
            (crate::runner::NetworkPath::Host, Some(var)) => {
                format!("host network, a free port per container in ${var}")
            }
            (crate::runner::NetworkPath::Host, None) => {
                format!("host network, port {}", self.spec.container_port)
            }
            (published, _) => published.describe(None),
        })
    }
    fn notes(&self) -> Vec<String> {
        let mut notes = self.runner.unmeasured();
        if self.load.isolate && !self.runner.host().own_cgroups() {
            notes.push(
                "CPU isolation was not applied: a CPU set needs a cgroup per container.".into(),
            );
        }
        notes
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

/// Splits the CPUs this process may use (`allowed`) between the service and
/// the load generator: the upper half to the container, the rest to the
/// generator (with 2 CPUs: the service on CPU 1, the generator on CPU 0).
/// Sharing hid a 20-30% difference between bases (ENVIRONMENT.md). With one
/// CPU, or `isolate` off, both sides share every CPU.
pub fn plan_isolation(allowed: &[usize], isolate: bool) -> Isolation {
    let mut cpus = allowed.to_vec();
    cpus.sort_unstable();
    cpus.dedup();
    if isolate && cpus.len() >= 2 {
        let service = cpus.split_off(cpus.len() - cpus.len() / 2);
        Isolation {
            requested: true,
            applied: true,
            service_cpus: service,
            generator_cpus: cpus,
        }
    } else {
        Isolation {
            requested: isolate,
            applied: false,
            service_cpus: cpus.clone(),
            generator_cpus: cpus,
        }
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

/// The load `[load]` describes, against `url` (with an SLO: each search
/// step's load); `compare` checks it once with a placeholder URL before
/// building anything.
pub fn load_config(load: &LoadSettings, url: &str) -> Result<LoadConfig, loadgen::ConfigError> {
    load_config_on(load, url, None)
}

/// As `load_config`, its worker threads pinned to `cpus` (one per CPU).
pub fn load_config_on(
    load: &LoadSettings,
    url: &str,
    cpus: Option<&Vec<usize>>,
) -> Result<LoadConfig, loadgen::ConfigError> {
    let builder = LoadConfig::builder(url);
    let builder = match cpus {
        Some(c) => builder.cpus(c.clone()),
        None => builder,
    };
    let builder = match (load.slo, load.duration) {
        (Some(slo), _) => builder.duration(slo.step_length(load)),
        (None, Some(d)) => builder.duration(d),
        (None, None) => builder.requests(load.requests),
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
            ..ConfigEdit::default()
        },
        platforms: vec![Platform::host()],
        platform_required: false,
        index_annotations: Vec::new(),
        annotations: Vec::new(),
        compression: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::config::Resources;

    #[test]
    fn two_cpus_give_the_service_cpu_1_and_the_generator_cpu_0() {
        let i = plan_isolation(&[0, 1], true);
        assert!(i.requested && i.applied);
        assert_eq!((i.service_cpus, i.generator_cpus), (vec![1], vec![0]));
    }

    #[test]
    fn more_cpus_are_split_in_halves_the_generator_keeping_the_odd_one() {
        let i = plan_isolation(&[3, 2, 1, 0, 4], true);
        assert_eq!(
            (i.service_cpus, i.generator_cpus),
            (vec![3, 4], vec![0, 1, 2])
        );
    }

    #[test]
    fn one_cpu_or_isolation_off_shares_every_cpu() {
        let i = plan_isolation(&[0], true);
        assert!(i.requested && !i.applied);
        assert_eq!((i.service_cpus, i.generator_cpus), (vec![0], vec![0]));
        let i = plan_isolation(&[0, 1], false);
        assert!(!i.requested && !i.applied);
        assert_eq!(i.service_cpus, vec![0, 1]);
        let d = i.describe().unwrap();
        assert!(d.contains("shared CPUs 0,1 (isolation turned off)"), "{d}");
    }

    #[test]
    fn the_load_is_pinned_to_the_generator_cpus() {
        let load = LoadSettings {
            requests: 10,
            concurrency: 4,
            keepalive: true,
            duration: None,
            warmup: 0,
            warmup_duration: None,
            repeats: 1,
            timeout: std::time::Duration::from_secs(1),
            isolate: true,
            network: Default::default(),
            slo: None,
        };
        let c = load_config_on(&load, "http://127.0.0.1:1/", Some(&vec![0])).unwrap();
        assert_eq!((c.cpus, c.threads), (Some(vec![0]), 1));
        assert_eq!(
            load_config(&load, "http://127.0.0.1:1/").unwrap().cpus,
            None
        );
    }

    #[test]
    fn with_an_slo_each_step_is_a_timed_load() {
        let mut load = LoadSettings {
            requests: 1000,
            concurrency: 4,
            keepalive: true,
            duration: None,
            warmup: 0,
            warmup_duration: None,
            repeats: 1,
            timeout: std::time::Duration::from_secs(1),
            isolate: true,
            network: Default::default(),
            slo: Some(crate::compare::config::SloSettings {
                slo: crate::loadgen::Slo::parse("p99=50ms").unwrap(),
                precision: 0.05,
                step: None,
                start: 100.0,
            }),
        };
        let c = load_config(&load, "http://127.0.0.1:1/").unwrap();
        assert_eq!(
            c.stop,
            loadgen::Stop::Duration(std::time::Duration::from_secs(2))
        );
        load.duration = Some(std::time::Duration::from_secs(5));
        let c = load_config(&load, "http://127.0.0.1:1/").unwrap();
        assert_eq!(
            c.stop,
            loadgen::Stop::Duration(std::time::Duration::from_secs(5))
        );
    }

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
            isolate: true,
            network: Default::default(),
            slo: None,
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
