//! The command line: clap definitions, resolved once into a `Context`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an image into the local cache and report its sizes
    Pull(cmd::pull::PullArgs),
    /// Report an image's exact compressed and uncompressed sizes
    Size(cmd::pull::SizeArgs),
    /// Load-test an HTTP URL (an ab/wrk/oha replacement)
    Bench(cmd::bench::BenchArgs),
}

/// Settings every command shares, resolved from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub cache_dir: PathBuf,
    pub quiet: bool,
}

impl Context {
    pub fn from_args(g: &GlobalArgs) -> Self {
        Context {
            cache_dir: g
                .cache_dir
                .clone()
                .unwrap_or_else(crate::oci::store::BlobStore::default_root),
            quiet: g.quiet,
        }
    }

    /// Whether progress bars may be drawn (stderr is a terminal, not `--quiet`).
    pub fn show_progress(&self) -> bool {
        !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::from_args(&cli.global);
    match cli.command {
        Command::Pull(a) => cmd::pull::pull(a, &ctx),
        Command::Size(a) => cmd::pull::size(a, &ctx),
        Command::Bench(a) => cmd::bench::run(a, &ctx),
    }
}
