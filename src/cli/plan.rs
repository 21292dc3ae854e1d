//! `icesat2 plan MANIFEST [--json]`: the granules a run would read, without reading them.

use std::path::PathBuf;

use crate::plan::Plan;

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// The manifest (YAML).
    manifest: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<u8> {
    super::existing_file(&args.manifest, "manifest")?;
    let plan = Plan::load(&args.manifest)?;
    if args.json {
        let granules: Vec<serde_json::Value> = plan
            .granules
            .iter()
            .map(|planned| {
                let (size, approximate) = size_of(&planned.granule);
                serde_json::json!({
                    "granule": planned.granule.name,
                    "location": planned.granule.location.to_string(),
                    "size": size,
                    "size_approximate": size.map(|_| approximate),
                    "skip": planned.skip,
                })
            })
            .collect();
        let document = serde_json::json!({
            "name": plan.name,
            "source": plan.source_kind,
            "release": plan.release,
            "collection": plan.collection,
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
        if let Some(collection) = &plan.collection {
            println!("  collection {}", printable(collection));
        }
        for planned in &plan.granules {
            match &planned.skip {
                Some(reason) => println!(
                    "  skip  {}  ({})",
                    printable(&planned.granule.name),
                    printable(reason)
                ),
                None => match size_of(&planned.granule) {
                    (Some(size), approximate) => println!(
                        "  read  {}  ({}{:.1} MB)",
                        printable(&planned.granule.name),
                        if approximate { "~" } else { "" },
                        size as f64 / 1e6
                    ),
                    (None, _) => println!("  read  {}", printable(&planned.granule.name)),
                },
            }
        }
        for warning in &plan.warnings {
            println!("warning: {}", printable(warning));
        }
    }
    Ok(0)
}

/// A granule's size in bytes and whether it is approximate: a local
/// file's own, else the catalog's hint (CMR rounds it, or has none).
fn size_of(granule: &crate::catalog::GranuleRef) -> (Option<u64>, bool) {
    match &granule.location {
        crate::catalog::Location::Local(path) => {
            (std::fs::metadata(path).map(|m| m.len()).ok(), false)
        }
        _ => (granule.size_hint, true),
    }
}

/// `text` with control characters (terminal escapes among them, which a
/// granule name from a catalog may carry) shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
