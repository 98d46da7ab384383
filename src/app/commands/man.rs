//! `ocibench man [COMMAND...]`: the manual page, roff on stdout, generated from the
//! clap definitions (`clap_mangen`). As git and cargo do, each subcommand has its own
//! page (`ocibench man pull` is ocibench-pull(1), `ocibench man cache prune`
//! ocibench-cache-prune(1)); ocibench(1) lists them all with every global flag.
//! `--output-dir DIR` writes every page as `NAME.1` for a packager's man1 directory.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::app::Cli;
use crate::app::explain::UserError;
use crate::app::output::write_stdout;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (e.g. `pull`, `cache prune`) [default: ocibench(1)]
    #[arg(value_name = "COMMAND", conflicts_with = "output_dir")]
    pub command: Vec<String>,
    /// Write every page (ocibench.1, ocibench-pull.1, ...) into this directory instead
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// The command line as the pages describe it: built (so subcommands are named
/// `ocibench-pull` and inherit the global flags), without clap's `help` subcommand.
fn documented() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

pub fn run(args: &ManArgs) -> anyhow::Result<()> {
    let root = documented();
    if let Some(dir) = &args.output_dir {
        return write_all(&root, dir).map_err(|e| {
            anyhow::Error::new(e).context(format!("cannot write man pages to {}", dir.display()))
        });
    }
    let mut page = root;
    let mut path = Vec::new();
    for name in &args.command {
        let Some(sub) = page.find_subcommand(name).cloned() else {
            let parent = page.get_display_name().unwrap_or(page.get_name());
            let names: Vec<&str> = page.get_subcommands().map(|c| c.get_name()).collect();
            let hint = if names.is_empty() {
                format!(
                    "{parent} has no subcommands; its page is `ocibench man {}`",
                    path.join(" ")
                )
            } else {
                format!("{parent}'s subcommands: {}", names.join(", "))
            };
            return Err(
                UserError::usage(format!("{parent} has no subcommand {name:?}"))
                    .with_hint(hint)
                    .into(),
            );
        };
        path.push(name.as_str());
        page = sub;
    }
    write_stdout(|out| man(page).render(out))
}

/// A page whose footer names the program and version (clap_mangen would put the
/// subcommand's own name there: "prune 0.1.0").
fn man(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(concat!("ocibench ", env!("CARGO_PKG_VERSION")))
}

/// `cmd`'s page and its subcommands' pages, each `NAME.1` in `dir`.
fn write_all(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_all(sub, dir)?;
    }
    man(cmd.clone()).generate_to(dir).map(drop)
}
