//! `icesat2 report DATASET [--out FILE] [--png FILE] [--color VARIABLE]`.

use std::path::PathBuf;

use anyhow::Context;

use crate::report::{charts, quicklook};

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The dataset: a folder or an s3:// prefix written by `icesat2 run`.
    dataset: String,
    /// Where to write the HTML report (default report.html, unless only
    /// --png is given).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also (or only) write the map alone as a PNG image.
    #[arg(long)]
    png: Option<PathBuf>,
    /// The numeric column the map is coloured by (default h_canopy, when present).
    #[arg(long)]
    color: Option<String>,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let summary = quicklook::summarize(&args.dataset, args.color.as_deref(), None)?;
    if let Some(png) = &args.png {
        let path = std::path::absolute(png).with_context(|| png.display().to_string())?;
        charts::map_png(&summary.map, &path).map_err(anyhow::Error::msg)?;
        eprintln!("map written to {}", png.display());
    }
    let out = match (&args.out, &args.png) {
        (Some(out), _) => Some(out.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from("report.html")),
    };
    if let Some(out) = out {
        let html = quicklook::render_html(&summary)?;
        let path = std::path::absolute(&out).with_context(|| out.display().to_string())?;
        crate::sink::commit::write_atomically(&path, html.as_bytes())?;
        eprintln!(
            "report of {} segments written to {}",
            summary.rows,
            out.display()
        );
    }
    Ok(0)
}
