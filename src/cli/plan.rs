//! `icesat2 plan MANIFEST [--json]`: the granules a run would read, without reading them.

use std::path::PathBuf;

use crate::plan::Plan;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The manifest (YAML).
    manifest: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PlanArgs) -> anyhow::Result<u8> {
    super::existing_file(&args.manifest, "manifest")?;
    let plan = Plan::load(&args.manifest)?;
    if args.json {
        let granules: Vec<serde_json::Value> = plan
            .granules
            .iter()
            .map(|planned| {
                let size = match &planned.granule.location {
                    crate::catalog::Location::Local(path) => {
                        std::fs::metadata(path).map(|m| m.len()).ok()
                    }
                    _ => planned.granule.size,
                };
                serde_json::json!({
                    "granule": planned.granule.name,
                    "location": planned.granule.location.to_string(),
                    "size": size,
                    "skip": planned.skip,
                })
            })
            .collect();
        let document = serde_json::json!({
            "name": plan.name,
            "source": plan.source_kind,
            "track_buffer_deg": plan.track_buffer_deg,
            "effective_buffer_deg": crate::plan::tracks::effective_buffer(&plan.request.region, plan.track_buffer_deg),
            "tracks": plan.tracks.rgts,
            "regions": plan.tracks.regions,
            "output": plan.output.to_string(),
            "granules": granules,
            "warnings": plan.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        println!(
            "{}: {} granules ({} to read)",
            plan.name,
            plan.granules.len(),
            plan.to_read().count()
        );
        for planned in &plan.granules {
            match &planned.skip {
                Some(reason) => println!(
                    "  skip  {}  ({})",
                    printable(&planned.granule.name),
                    printable(reason)
                ),
                None => match planned.granule.size {
                    Some(size) => println!(
                        "  read  {}  ({:.1} MB)",
                        printable(&planned.granule.name),
                        size as f64 / 1e6
                    ),
                    None => println!("  read  {}", printable(&planned.granule.name)),
                },
            }
        }
        for warning in &plan.warnings {
            println!("warning: {}", printable(warning));
        }
    }
    Ok(0)
}

/// `text` with control characters (terminal escapes among them, which a
/// granule name from a catalog may carry) shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
