//! `ocibench cache verify [--repair]` and `ocibench cache prune`: looking after the
//! blob cache named by the global `--cache-dir` (or `OCIBENCH_CACHE`). Verifying
//! hashes every blob; repairing and pruning remove blobs, so they wait for no one:
//! another ocibench using the cache makes them fail (exit 1) rather than pull blobs
//! from under it.

use std::io::Write;

use crate::app::explain::UserError;
use crate::app::globals::Context;
use ocibench::oci::store::{BlobStore, PruneReport, VerifyReport};
use ocibench::report::units::human_bytes;

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheAction {
    /// Hash every cached blob against its digest; report damage (exit 1)
    Verify {
        /// Remove damaged blobs and the images that need them (the next pull fetches them again)
        #[arg(long)]
        repair: bool,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no cached image uses, and what interrupted runs left behind
    Prune {
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: CacheArgs, ctx: &Context) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.action {
        CacheAction::Verify { repair, json } => {
            let store = if repair {
                BlobStore::open_exclusive(&ctx.cache_dir)?
            } else {
                BlobStore::open(&ctx.cache_dir)?
            };
            let report = store.verify(repair)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write_verify(&mut out, &report)?;
            }
            if report.damaged() {
                return Err(UserError::runtime(format!(
                    "cache corrupt: {} damaged blob(s), {} image(s) affected{}",
                    report.corrupt.len(),
                    report.broken_entries.len(),
                    if report.index_corrupt {
                        ", index.json unreadable"
                    } else {
                        ""
                    }
                ))
                .with_hint("run `ocibench cache verify --repair`")
                .into());
            }
        }
        CacheAction::Prune { json } => {
            let report = BlobStore::open_exclusive(&ctx.cache_dir)?.prune()?;
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write_prune(&mut out, &report)?;
            }
        }
    }
    Ok(())
}

fn write_verify(out: &mut impl Write, r: &VerifyReport) -> std::io::Result<()> {
    writeln!(
        out,
        "Checked {} blobs ({}) in {}",
        r.blobs_checked,
        human_bytes(r.bytes_checked),
        r.cache.display()
    )?;
    for c in &r.corrupt {
        writeln!(out, "  corrupt   {} (hashes to {})", c.digest, c.actual)?;
    }
    for name in &r.broken_entries {
        writeln!(out, "  affected  {name}")?;
    }
    if r.index_corrupt {
        writeln!(out, "  corrupt   index.json")?;
    }
    for d in &r.removed_blobs {
        writeln!(out, "  removed   {d}")?;
    }
    for name in &r.removed_entries {
        writeln!(out, "  untagged  {name} (the next pull fetches it again)")?;
    }
    if r.index_reset {
        writeln!(out, "  reset     index.json (cached blobs kept)")?;
    }
    if r.permissions_fixed > 0 {
        writeln!(
            out,
            "  readable  {} files and directories made readable by all",
            r.permissions_fixed
        )?;
    } else if r.unreadable > 0 {
        writeln!(
            out,
            "  private   {} files and directories others cannot read (--repair makes them readable)",
            r.unreadable
        )?;
    }
    if !r.damaged() && r.corrupt.is_empty() && !r.index_corrupt {
        writeln!(out, "  all intact")?;
    }
    Ok(())
}

fn write_prune(out: &mut impl Write, r: &PruneReport) -> std::io::Result<()> {
    writeln!(
        out,
        "Pruned {}: removed {} blobs ({}) and {} temporaries ({}); kept {} blobs; freed {}",
        r.cache.display(),
        r.removed_blobs,
        human_bytes(r.removed_blob_bytes),
        r.removed_temporaries,
        human_bytes(r.removed_temporary_bytes),
        r.kept_blobs,
        human_bytes(r.freed_bytes)
    )
}
