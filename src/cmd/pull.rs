//! `ocibench pull` and `ocibench size`.

use crate::cli::Context;
use crate::error::UserError;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Image: docker://REF (or bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE
    pub image: String,
    /// Platform to choose from a multi-platform index [default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print one JSON document (the size object) on stdout
    #[arg(long)]
    pub json: bool,
}

pub type SizeArgs = PullArgs;

pub fn pull(_args: PullArgs, _ctx: &Context) -> anyhow::Result<()> {
    Err(UserError::runtime("pull is not built yet").into())
}

pub fn size(_args: SizeArgs, _ctx: &Context) -> anyhow::Result<()> {
    Err(UserError::runtime("size is not built yet").into())
}
