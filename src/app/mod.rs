//! The command line, compiled into the binary only: clap definitions, the global
//! flags resolved once into a `Context`, and one dispatch per subcommand. The
//! library (`ocibench::*`) never sees any of it, so it cannot reach the terminal.
//!
//! - `globals`: cache dir, quiet, credentials, registry client, reporter;
//! - `args`: clap groups shared by several commands, and their settings;
//! - `explain`: every hint and exit status;
//! - `terminal`: progress bars and status lines (stderr, never panicking);
//! - `output`: the report on stdout; a closed stdout ends a command quietly;
//! - `interrupt`: what a signal does to the commands that write files;
//! - `trace`: `-v`, the registry client's exchanges as stderr lines;
//! - `commands/`: one file per subcommand: arguments, one library call, rendering.

pub mod args;
pub mod commands;
pub mod explain;
pub mod globals;
pub mod interrupt;
pub mod output;
pub mod terminal;
pub mod trace;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::commands as cmd;
use crate::app::globals::Context;

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
    /// No progress bars or status lines on stderr (-v still traces)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Trace every HTTP exchange with a registry on stderr, one line each: method, URL,
    /// status, bytes, milliseconds, retry number (never a credential or token)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Credentials for the registry the command writes to (push, build), else the one
    /// it reads from; other registries get only what auth.json/config.json hold
    #[arg(
        long,
        global = true,
        value_name = "USER:PASS",
        conflicts_with = "creds_file"
    )]
    pub creds: Option<crate::app::args::CredsValue>,
    /// A file holding USER:PASS, used as --creds (keeps the password out of the process list)
    #[arg(long, global = true, value_name = "FILE")]
    pub creds_file: Option<PathBuf>,
    /// Registry certificates (*.crt CAs, *.cert + *.key client pairs) for every
    /// registry, instead of certs.d/HOST[:PORT]/
    #[arg(long, global = true, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an image into the local cache and report its sizes
    Pull(crate::app::args::ImageArgs),
    /// Report an image's exact compressed and uncompressed sizes
    Size(crate::app::args::ImageArgs),
    /// Layer files onto a base image, reproducibly, and write it out
    Build(Box<cmd::build::BuildArgs>),
    /// Push an image to a registry, sending only the blobs it lacks
    Push(cmd::push::PushArgs),
    /// Show an image's config, history, layers and platforms without pulling its layers
    Inspect(cmd::inspect::InspectArgs),
    /// Copy an image unchanged between registries, OCI layouts and archives (as skopeo copy)
    Copy(Box<cmd::copy::CopyArgs>),
    /// Compare base images: build the app on each, run and load each, recommend one
    Compare(Box<cmd::compare::CompareArgs>),
    /// Load-test an HTTP URL (an ab/wrk/oha replacement)
    Bench(cmd::bench::BenchArgs),
    /// Run an image with podman and load-test it: start-up time, memory, throughput
    Run(Box<cmd::run::RunArgs>),
    /// Look after the blob cache: verify (and repair) it, prune it
    Cache(cmd::cache::CacheArgs),
    /// Print a shell completion script on stdout (bash, zsh or fish)
    Completions(cmd::completions::CompletionsArgs),
    /// Print the manual page (roff) on stdout, or write every page to a directory
    Man(cmd::man::ManArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::from_args(&cli.global)?;
    if !matches!(
        cli.command,
        Command::Bench(_) | Command::Run(_) | Command::Compare(_)
    ) {
        crate::app::interrupt::remove_temporaries_on_signal();
    }
    let result = match cli.command {
        Command::Pull(a) => cmd::pull::run(a, &ctx),
        Command::Size(a) => cmd::size::run(a, &ctx),
        Command::Build(a) => cmd::build::run(*a, &ctx),
        Command::Push(a) => cmd::push::run(a, &ctx),
        Command::Inspect(a) => cmd::inspect::run(a, &ctx),
        Command::Copy(a) => cmd::copy::run(*a, &ctx),
        Command::Bench(a) => cmd::bench::run(a, &ctx),
        Command::Compare(a) => cmd::compare::run(*a, &ctx),
        Command::Run(a) => cmd::run::run(*a, &ctx),
        Command::Cache(a) => cmd::cache::run(a, &ctx),
        Command::Completions(a) => cmd::completions::run(&a),
        Command::Man(a) => cmd::man::run(&a),
    };
    crate::app::interrupt::wait_if_interrupted();
    result
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    #[test]
    fn parsed_arguments_never_print_a_password() {
        for args in [
            &["ocibench", "--creds", "u:hunter2", "pull", "x"][..],
            &[
                "ocibench",
                "push",
                "--src-creds",
                "a:hunter2",
                "--dest-creds",
                "b:hunter2",
                "x",
                "y",
            ],
            &[
                "ocibench",
                "copy",
                "--src-creds",
                "a:hunter2",
                "--dest-creds",
                "b:hunter2",
                "x",
                "y",
            ],
        ] {
            let cli = super::Cli::try_parse_from(args).unwrap();
            let shown = format!("{cli:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
