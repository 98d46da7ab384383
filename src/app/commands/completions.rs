//! `ocibench completions bash|zsh|fish`: a completion script for the shell, written on
//! stdout and generated from the clap definitions (`clap_complete`), so every
//! subcommand and flag of this build completes. The three shells offered are the ones
//! the tests check with the shell itself (`bash -n`, `zsh -n`, `fish --no-execute`).

use clap::CommandFactory;

use crate::app::Cli;
use crate::app::output::write_stdout;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl CompletionShell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    // Generated into memory first: clap_complete panics on a failed write, and
    // `ocibench completions bash | head` must end as quietly as any other report.
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell.generator(),
        &mut Cli::command(),
        "ocibench",
        &mut script,
    );
    write_stdout(|out| out.write_all(&script))
}
