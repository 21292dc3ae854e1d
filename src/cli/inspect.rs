//! `icesat2 inspect GRANULE [--json]`: beams, groups, variables, shapes,
//! types and fill values of one granule.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::granule::reader::ReaderFile;
use crate::granule::{self, Hdf5Source, Node};
use crate::store;

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// A granule: local path or file:// URL.
    granule: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: InspectArgs) -> anyhow::Result<u8> {
    let path = match args.granule.split_once("://") {
        Some(("file", rest)) => PathBuf::from(rest),
        Some((scheme, _)) => anyhow::bail!(
            "{}: {scheme}:// is not supported yet; use a local path",
            args.granule
        ),
        None => PathBuf::from(&args.granule),
    };
    super::existing_file(&path, "file")?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let storage =
        store::open_local(&path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file = ReaderFile::open(Arc::new(storage)).with_context(|| path.display().to_string())?;
    let meta = granule::granule_meta(&file, &name).with_context(|| path.display().to_string())?;
    let beams = granule::beams(&file, &meta).with_context(|| path.display().to_string())?;
    let mut datasets = Vec::new();
    walk(&file, "/", &mut Vec::new(), &mut datasets).with_context(|| path.display().to_string())?;

    let mut beam_rows = Vec::new();
    for beam in &beams {
        let latitude = format!("/{}/land_segments/latitude", beam.name);
        let segments = match file.node(&latitude)? {
            Node::Dataset => Some(file.dataset(&latitude)?.n_rows()),
            _ => None,
        };
        let photons_path = format!("/{}/signal_photons/ph_segment_id", beam.name);
        let photons = match file.node(&photons_path)? {
            Node::Dataset => Some(file.dataset(&photons_path)?.n_rows()),
            _ => None,
        };
        beam_rows.push((beam, segments, photons));
    }

    if args.json {
        let document = serde_json::json!({
            "granule": name,
            "rgt": meta.rgt,
            "cycle": meta.cycle,
            "region": meta.region,
            "sc_orient": meta.sc_orient,
            "start": meta.start.map(|t| t.to_rfc3339()),
            "end": meta.end.map(|t| t.to_rfc3339()),
            "beams": beam_rows.iter().map(|(beam, segments, photons)| serde_json::json!({
                "beam": beam.name,
                "strength": beam.strength.as_str(),
                "spot": beam.spot,
                "land_segments": segments,
                "photons": photons,
            })).collect::<Vec<_>>(),
            "datasets": datasets.iter().map(|(path, info)| serde_json::json!({
                "path": path,
                "dtype": info.type_name,
                "shape": info.shape,
                "chunks": info.chunks,
                "fill": info.fill_attribute.as_ref().and_then(|fill| fill.get_f64(0)),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(0);
    }

    println!("{name}");
    println!(
        "  rgt {}  cycle {}  region {:02}  sc_orient {}  {} .. {}",
        meta.rgt,
        meta.cycle,
        meta.region,
        meta.sc_orient
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into()),
        meta.start
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into()),
        meta.end
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into()),
    );
    println!("beams:");
    for (beam, segments, photons) in &beam_rows {
        println!(
            "  {}  {:<7} spot {}  {} land segments  {} photons",
            beam.name,
            beam.strength.as_str(),
            beam.spot
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            segments
                .map(|n| n.to_string())
                .unwrap_or_else(|| "no".into()),
            photons
                .map(|n| n.to_string())
                .unwrap_or_else(|| "no".into()),
        );
    }
    println!("datasets:");
    let width = datasets
        .iter()
        .map(|(path, _)| path.len())
        .max()
        .unwrap_or(0);
    for (path, info) in &datasets {
        let shape = format!("{:?}", info.shape);
        let chunks = info
            .chunks
            .as_ref()
            .map(|c| format!("chunks {c:?}"))
            .unwrap_or_default();
        let fill = match &info.fill_attribute {
            Some(fill) => format!(
                "fill {}",
                fill.get_f64(0).map(|v| v.to_string()).unwrap_or_default()
            ),
            None => String::new(),
        };
        println!(
            "  {path:<width$}  {:<8} {shape:<12} {chunks:<20} {fill}",
            info.type_name
        );
    }
    Ok(0)
}

/// Every dataset under `group`, depth first, with its description.
/// `ancestors` holds the object header address and path of every group
/// from the root down to `group`'s parent: a group reached again below
/// itself (a hard link to an ancestor) is refused, as the walk would
/// otherwise never end. A group reached by two paths that are not nested
/// is listed under both (the walk still ends).
fn walk(
    file: &ReaderFile,
    group: &str,
    ancestors: &mut Vec<(u64, String)>,
    out: &mut Vec<(String, granule::DatasetInfo)>,
) -> anyhow::Result<()> {
    let address = file.group_address(group)?;
    if let Some((_, first)) = ancestors.iter().find(|(seen, _)| *seen == address) {
        anyhow::bail!(
            "group {group} is group {first} again (a hard link cycle: a group inside itself); not walking it"
        );
    }
    ancestors.push((address, group.to_string()));
    for member in file.members(group)? {
        let path = if group == "/" {
            format!("/{member}")
        } else {
            format!("{group}/{member}")
        };
        match file.node(&path)? {
            Node::Group => walk(file, &path, ancestors, out)?,
            Node::Dataset => out.push((path.clone(), file.dataset(&path)?)),
            Node::Missing => {}
        }
    }
    ancestors.pop();
    Ok(())
}
