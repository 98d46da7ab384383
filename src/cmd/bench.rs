//! `ocibench bench URL`: the load generator's command.

use crate::cli::Context;
use crate::error::UserError;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// URL to load (http://HOST:PORT/PATH)
    pub url: String,
}

pub fn run(_args: BenchArgs, _ctx: &Context) -> anyhow::Result<()> {
    Err(UserError::runtime("bench is not built yet").into())
}
