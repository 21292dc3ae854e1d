//! `icesat2 query DATASET SQL [--format table|csv|json|parquet] [--out FILE]
//! [--memory-mb N]`.

use std::path::PathBuf;

use crate::query::{self, Format};

#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The dataset: a folder or an s3:// prefix written by `icesat2 run`.
    dataset: String,
    /// One SQL query over the table `segments`.
    sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output (needed for parquet).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The most memory the query may hold, in MiB (default: half the
    /// machine's memory); sorts and aggregations spill to disk at their
    /// share of it, and a query that needs more fails.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    memory_mb: Option<u64>,
}

pub(crate) fn run(args: QueryArgs) -> anyhow::Result<u8> {
    let memory_mb = args.memory_mb.unwrap_or_else(query::default_memory_mb);
    let rows = query::run(
        &args.dataset,
        &args.sql,
        args.format,
        args.out.as_deref(),
        memory_mb,
    )?;
    if args.format == Format::Table || args.out.is_some() {
        eprintln!("{rows} rows");
    }
    Ok(0)
}
