//! `icesat2 run MANIFEST [--shard K/N] [--threads N] [--fresh]`.

use std::path::PathBuf;
use std::time::Instant;

use crate::pipeline::{self, RunOptions};
use crate::plan::{Plan, Shard};

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The manifest (YAML).
    manifest: PathBuf,
    /// This worker's share of the granules, K/N with K in 0..N.
    #[arg(long, value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Worker threads (default: every core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Remove an earlier run's dataset and reports first.
    #[arg(long)]
    fresh: bool,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<u8> {
    super::existing_file(&args.manifest, "manifest")?;
    let clock = Instant::now();
    let plan = Plan::load(&args.manifest)?;
    let options = RunOptions {
        threads: args.threads.map(usize::from),
        shard: args.shard,
        fresh: args.fresh,
    };
    let (report, report_path) = pipeline::run(&plan, &options, clock.elapsed().as_secs_f64())?;
    let tally = &report.granules;
    eprintln!(
        "{}: {} granules planned, {} done, {} already done, {} skipped, {} failed; {} rows written to {} ({:.1} s); report {}",
        plan.name,
        tally.planned,
        tally.done,
        tally.already_done,
        tally.skipped,
        tally.failed.len(),
        report.rows_written,
        plan.output,
        report.timings.total_s,
        report_path
    );
    for failure in &tally.failed {
        eprintln!("failed: {}: {}", failure.granule, failure.reason);
    }
    Ok(report.exit_code())
}
