//! Command-line interface: one module per subcommand. Usage errors and bad
//! input exit 1 with one line; a run with failed granules exits 2.

mod inspect;
mod plan;
#[cfg(feature = "query")]
mod query;
mod report;
mod run;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "icesat2",
    version,
    about = "ICESat-2 ATL08 land segments into analysis-ready GeoParquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan, read, filter and write the dataset of a manifest.
    Run(run::RunArgs),
    /// The granules a manifest selects, without reading any.
    Plan(plan::PlanArgs),
    /// SQL over a dataset (table `segments`), read-only.
    #[cfg(feature = "query")]
    Query(query::QueryArgs),
    /// A quick-look HTML report (map, counts, histograms) of a dataset, or its map as PNG.
    Report(report::ReportArgs),
    /// Write realistic synthetic ATL08 granules (needs the `hdf5` feature).
    Synth(synth::SynthArgs),
    /// Beams, groups, variables, shapes, types and fill values of one granule.
    Inspect(inspect::InspectArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = err.print();
                return ExitCode::from(1);
            }
            let text = err.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad usage")
                .trim_start_matches("error: ");
            eprintln!("icesat2: {first} (see icesat2 --help)");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::run(args),
        #[cfg(feature = "query")]
        Command::Query(args) => query::run(args),
        Command::Report(args) => report::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let text = format!("{err:#}");
            eprintln!("icesat2: {}", text.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

/// A path argument that must exist.
fn existing_file(path: &std::path::Path, what: &str) -> anyhow::Result<()> {
    if !path.exists() {
        anyhow::bail!("{}: no such {what}", path.display());
    }
    Ok(())
}
