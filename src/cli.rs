//! The command line: clap definitions, resolved once into a `Context`.

use std::path::PathBuf;

use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::oci::credentials::{self, CredentialStore};
use crate::oci::reference::TlsMode;
use crate::oci::registry::RegistryClient;

use crate::cmd;

#[derive(Debug, Parser)]
#[command(
    name = "ocibench",
    version,
    about = "Which base image should your service be built on? Pull, size, build, run and load-test OCI images, daemonless.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Blob cache (an OCI image layout) [default: $XDG_CACHE_HOME/ocibench]
    #[arg(long, global = true, env = "OCIBENCH_CACHE", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bars or status lines on stderr
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Registry credentials, overriding auth.json and config.json
    #[arg(
        long,
        global = true,
        value_name = "USER:PASS",
        conflicts_with = "creds_file"
    )]
    pub creds: Option<String>,
    /// A file holding USER:PASS (keeps the password out of the process list)
    #[arg(long, global = true, value_name = "FILE")]
    pub creds_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an image into the local cache and report its sizes
    Pull(cmd::pull::PullArgs),
    /// Report an image's exact compressed and uncompressed sizes
    Size(cmd::pull::SizeArgs),
    /// Layer files onto a base image, reproducibly, and write it out
    Build(Box<cmd::build_args::BuildArgs>),
    /// Push an image to a registry, sending only the blobs it lacks
    Push(cmd::push::PushArgs),
    /// Compare base images: build the app on each, run and load each, recommend one
    Compare(Box<cmd::compare::CompareArgs>),
    /// Load-test an HTTP URL (an ab/wrk/oha replacement)
    Bench(cmd::bench::BenchArgs),
    /// Run an image with podman and load-test it: start-up time, memory, throughput
    Run(Box<cmd::run::RunArgs>),
}

/// Settings every command shares, resolved from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache_dir: PathBuf,
    pub quiet: bool,
    /// Where registry credentials come from (`--creds`, then the auth files).
    pub credentials: Arc<CredentialStore>,
}

impl Context {
    pub fn from_args(g: &GlobalArgs) -> Result<Self, crate::oci::credentials::CredentialError> {
        let flag = match (&g.creds, &g.creds_file) {
            (Some(c), _) => Some(credentials::parse_creds_flag(c)?),
            (None, Some(f)) => Some(credentials::read_creds_file(f)?),
            (None, None) => None,
        };
        Ok(Context {
            cache_dir: g
                .cache_dir
                .clone()
                .unwrap_or_else(crate::oci::store::BlobStore::default_root),
            quiet: g.quiet,
            credentials: Arc::new(CredentialStore::from_env(flag)),
        })
    }

    /// A registry client with this context's credentials.
    pub fn registry_client(&self, tls: TlsMode) -> Arc<RegistryClient> {
        Arc::new(
            RegistryClient::builder()
                .tls(tls)
                .credentials(self.credentials.clone().provider())
                .build(),
        )
    }

    /// Whether progress bars may be drawn (stderr is a terminal, not `--quiet`).
    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

/// Hint and exit kind of one error in a chain, for the library types that know them.
pub fn explain(
    e: &(dyn std::error::Error + 'static),
) -> Option<(Option<String>, crate::error::ExitKind)> {
    use crate::error::{Explain, UserError};
    use crate::oci;
    fn of<T: Explain>(t: &T) -> Option<(Option<String>, crate::error::ExitKind)> {
        Some((t.hint(), t.exit_kind()))
    }
    if let Some(x) = e.downcast_ref::<UserError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::image::PullError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::source::SourceError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::nix::NixError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::layer::LayerError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::config::ConfigError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::export::ExportError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::export::DestinationError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::credentials::CredentialError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::push::PushError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<oci::registry::RegistryError>() {
        return of(x);
    }
    if let Some(x) = e.downcast_ref::<crate::runner::RunnerError>() {
        return of(x);
    }
    if let Some(oci::store::StoreError::Open { .. }) = e.downcast_ref::<oci::store::StoreError>() {
        return Some((
            Some("set --cache-dir or OCIBENCH_CACHE to a writable directory".into()),
            crate::error::ExitKind::Runtime,
        ));
    }
    None
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::from_args(&cli.global)?;
    match cli.command {
        Command::Pull(a) => cmd::pull::pull(a, &ctx),
        Command::Size(a) => cmd::pull::size(a, &ctx),
        Command::Build(a) => cmd::build::run(*a, &ctx),
        Command::Push(a) => cmd::push::run(a, &ctx),
        Command::Bench(a) => cmd::bench::run(a, &ctx),
        Command::Compare(a) => cmd::compare::run(*a, &ctx),
        Command::Run(a) => cmd::run::run(*a, &ctx),
    }
}
