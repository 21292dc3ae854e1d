//! `icesat2 query DATASET SQL [--format table|csv|json|parquet] [--out FILE]`.

use std::path::PathBuf;

use crate::query::{self, Format};

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
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
}

pub fn run(args: QueryArgs) -> anyhow::Result<u8> {
    let rows = query::run(&args.dataset, &args.sql, args.format, args.out.as_deref())?;
    if args.format == Format::Table || args.out.is_some() {
        eprintln!("{rows} rows");
    }
    Ok(0)
}
