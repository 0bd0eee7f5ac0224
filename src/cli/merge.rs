//! `systole merge`: joins the --json files of a sweep's shards (`systole
//! sweep --shard I/N`) into the whole sweep (`systole::flow::sweep::merge`)
//! and prints and writes it as `systole sweep` does unsharded (the paths
//! the table and the JSON name are the first file's).

use super::error::{CliError, Result};
use super::files::check_destinations;
use super::sweep::write_outputs;
use clap::Args;
use std::path::{Path, PathBuf};
use systole::flow::sweep::{self, Sweep};

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' sweep JSON files (`systole sweep --shard I/N --json
    /// ...`), in any order.
    #[arg(value_name = "SHARD.json", required = true)]
    pub shards: Vec<PathBuf>,
    /// Write the merged sweep as JSON (as `systole sweep --json`).
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
    /// Write the merged sweep as CSV (as `systole sweep --csv`).
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
}

pub fn run(args: &MergeArgs) -> Result<()> {
    let mut outs: Vec<(&Path, &str)> = Vec::new();
    if let Some(p) = &args.json {
        outs.push((p, "--json"));
    }
    if let Some(p) = &args.csv {
        outs.push((p, "--csv"));
    }
    check_destinations(outs)?;
    let names: Vec<String> = args.shards.iter().map(|p| p.display().to_string()).collect();
    let mut parts = Vec::new();
    for (path, name) in args.shards.iter().zip(&names) {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::input(format!("{name}: {e}")))?;
        parts.push(Sweep::from_json(&text, name)?);
    }
    let merged = sweep::merge(parts, &names)?;
    write_outputs(&merged, args.json.as_deref(), args.csv.as_deref(), None)
}
