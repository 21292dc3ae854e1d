//! The quick-look report of a dataset: one self-contained HTML file (inline
//! SVG, no scripts, nothing fetched) with the map of kept segments, counts
//! by beam and granule, skipped and failed granules, histograms of the
//! requested variables, the time coverage, the runs and the manifest.
//!
//! Every number comes from the dataset's files (`scan`: the rows
//! `icesat2 query` sees, read in two passes without SQL) or from the run
//! reports under `_runs/`; the map is drawn from an aggregated grid, never
//! point by point, so a large dataset renders in seconds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use rayon::prelude::*;

use super::charts::{self, Cell, Histogram, MapData};
use super::scan::Dataset;
use super::stats::{self, Binning, Range, Tally};
use super::{ReportError, RunReport, run_reports};
use crate::dataset::schema;
use crate::sink::Output;

/// The variable the map is coloured by unless another is chosen.
pub const DEFAULT_COLOR: &str = "h_canopy";
/// Grid cells across the map.
const MAP_CELLS: f64 = 160.0;
/// More selected tracks than this are not drawn (a continent selects
/// hundreds; the map would be lines only).
const MAX_TRACKS: usize = 60;
/// Points per drawn track (a point every 10 km).
const TRACK_POINTS: usize = 4_000;
/// Bins of each histogram.
const BINS: usize = 30;

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub title: String,
    pub dataset: String,
    pub rows: u64,
    pub map: MapData,
    /// (beam, strength, rows).
    pub beams: Vec<(String, String, u64)>,
    pub granules: Vec<GranuleRow>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    pub histograms: Vec<Histogram>,
    /// Requested variables not drawn (list columns), with their type.
    pub not_drawn: Vec<(String, String)>,
    /// First and last segment time (UTC, ISO 8601).
    pub time_range: Option<(String, String)>,
    /// Rows by month (`YYYY-MM`).
    pub months: Vec<(String, u64)>,
    pub runs: Vec<RunReport>,
}

/// One granule in the dataset or the run reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GranuleRow {
    pub granule: String,
    /// Rows in the dataset.
    pub rows: u64,
    /// Segments read (all beams), from the run that read it.
    pub segments: Option<u64>,
    pub seconds: Option<f64>,
}

/// What a run counted of the rows it wrote, as it wrote them, and the
/// files that hold them (relative paths): the quick-look at the end of the
/// run reads only the dataset's other files.
#[derive(Debug, Clone)]
pub struct RunTally {
    pub tally: Tally,
    pub files: BTreeSet<String>,
}

/// The counts a run keeps of its rows (`Tally::add_batch`): the map at the
/// levels the region alone asks for (the data lies inside it), and each of
/// the `schema`'s requested numeric columns at levels its first values
/// choose; the map coloured as `summarize` colours it by default.
pub fn run_binning(schema: &arrow::datatypes::Schema, region: &[Vec<[f64; 2]>]) -> Binning {
    let numeric = numeric_columns(schema.fields().iter());
    let color = numeric
        .iter()
        .find(|column| *column == DEFAULT_COLOR)
        .or(numeric.first())
        .cloned();
    let (_, cell) = map_grid(None, None, region);
    Binning {
        cell_levels: cell_levels(cell),
        color,
        histograms: numeric.into_iter().map(|name| (name, None)).collect(),
    }
}

/// The requested variables that are numbers: neither fixed nor partition
/// columns.
fn numeric_columns<'a>(
    fields: impl Iterator<Item = &'a arrow::datatypes::FieldRef>,
) -> Vec<String> {
    fields
        .filter(|field| is_variable(field) && field.data_type().is_numeric())
        .map(|field| field.name().clone())
        .collect()
}

/// Whether a column is a requested variable: neither fixed nor a partition.
fn is_variable(field: &arrow::datatypes::Field) -> bool {
    let name = field.name().as_str();
    !crate::granule::columns::is_fixed_column(name)
        && crate::sink::PartitionKey::parse(name).is_none()
}

/// Levels of map cells no larger than `cell` (degrees of longitude and of
/// latitude).
fn cell_levels(cell: (f64, f64)) -> (i32, i32) {
    let at_most = |size: f64| {
        let level = stats::level_at_least(size);
        if 2f64.powi(level) > size {
            level - 1
        } else {
            level
        }
    };
    (at_most(cell.0), at_most(cell.1))
}

/// Summarises the dataset at `dataset` (a folder or `s3://` prefix) and its
/// run reports; the map is coloured by `color` (default `h_canopy` when the
/// dataset has it). `run`: what the run that just wrote some of its files
/// counted of them.
pub fn summarize(
    dataset: &str,
    color: Option<&str>,
    run: Option<&RunTally>,
) -> Result<Summary, ReportError> {
    let output = if dataset.starts_with("s3://") {
        Output::s3(dataset).map_err(ReportError)?
    } else if std::path::Path::new(dataset).is_dir() {
        Output::Local(dataset.into())
    } else {
        return Err(ReportError(format!("{dataset}: not a dataset folder")));
    };
    let runs = run_reports(&output).map_err(|err| ReportError(err.to_string()))?;
    let data = Dataset::list(&output)?;
    let footers = data.footers()?;

    let numeric = numeric_columns(footers.fields.iter());
    let not_drawn = footers
        .fields
        .iter()
        .filter(|field| is_variable(field) && !field.data_type().is_numeric())
        .map(|field| (field.name().clone(), field.data_type().to_string()))
        .collect();
    let color = match color {
        Some(name) if numeric.iter().any(|column| column == name) => Some(name.to_string()),
        Some(name) => {
            return Err(ReportError(format!(
                "--color {name}: not a numeric column of the dataset (numeric columns: {})",
                if numeric.is_empty() {
                    "none".to_string()
                } else {
                    numeric.join(", ")
                }
            )));
        }
        None => numeric
            .iter()
            .find(|column| *column == DEFAULT_COLOR)
            .or(numeric.first())
            .cloned(),
    };
    let latest = runs.last();
    let mut summary = Summary {
        title: latest
            .map(|run| run.name.clone())
            .unwrap_or_else(|| dataset.to_string()),
        dataset: dataset.to_string(),
        not_drawn,
        ..Summary::default()
    };
    if let Some((first, last)) = footers.ranges.get(schema::TIME)
        && let (Some(first), Some(last)) = (stats::format_time(*first), stats::format_time(*last))
    {
        summary.time_range = Some((first, last));
    }

    let region = runs
        .iter()
        .rev()
        .find(|run| !run.region.is_empty())
        .map(|run| run.region.clone())
        .unwrap_or_default();
    let tracks: BTreeSet<u16> = runs
        .iter()
        .rev()
        .find(|run| !run.tracks.is_empty())
        .map(|run| run.tracks.iter().copied().collect())
        .unwrap_or_default();
    let (bounds, cell) = map_grid(
        footers.ranges.get(schema::LONGITUDE).copied(),
        footers.ranges.get(schema::LATITUDE).copied(),
        &region,
    );
    let ranges: Vec<Option<Range>> = numeric
        .iter()
        .map(|name| footers.ranges.get(name).copied())
        .collect();
    // The levels the dataset's extent asks for (at most MAP_CELLS cells
    // across, BINS bins over a column's range), or the run's own counts'
    // where those are coarser; the run's counts are used when they count
    // the same colour column.
    // (and only when the listing holds every file it wrote, as it does
    // once the run has committed them).
    let run = run.filter(|run| {
        run.tally.color == color
            && run
                .files
                .iter()
                .all(|file| data.files.binary_search(file).is_ok())
    });
    let cells = cell_levels(cell);
    let cells = match run {
        Some(run) => (
            cells.0.max(run.tally.cell_levels.0),
            cells.1.max(run.tally.cell_levels.1),
        ),
        None => cells,
    };
    let levels: HashMap<String, i32> = numeric
        .iter()
        .zip(&ranges)
        .filter_map(|(name, range)| {
            let (low, high) = (*range)?;
            let mut level = stats::level_at_least((high - low) / (BINS - 1) as f64);
            if let Some((_, bins)) = run.and_then(|run| {
                run.tally
                    .histograms
                    .iter()
                    .find(|(column, _)| column == name)
            }) && let Some(theirs) = bins.level
            {
                level = level.max(theirs);
            }
            Some((name.clone(), level))
        })
        .collect();
    let binning = Binning {
        cell_levels: cells,
        color: color.clone(),
        histograms: numeric
            .iter()
            .filter_map(|name| Some((name.clone(), Some(*levels.get(name)?))))
            .collect(),
    };
    // The files the run counted are not read again.
    let mut data = data;
    data.files
        .retain(|file| !run.is_some_and(|run| run.files.contains(file)));
    // The tracks are drawn from the orbit model while the files are read.
    let (tally, tracks) = rayon::join(
        || data.tally(&binning),
        || track_lines(&tracks, charts::plot_bounds(bounds)),
    );
    let mut tally = tally?;
    if let Some(run) = run {
        let mut counted = run.tally.clone();
        counted.coarsen(cells, &levels);
        tally.coarsen(cells, &levels);
        tally = tally.merge(counted);
    }

    summary.rows = tally.rows;
    let cell = (
        2f64.powi(tally.cell_levels.0),
        2f64.powi(tally.cell_levels.1),
    );
    summary.map = map_data(bounds, cell, &tally.cells, color, region, tracks);
    summary.beams = tally
        .beams
        .into_iter()
        .map(|((beam, strength), rows)| (beam, strength, rows))
        .collect();
    let granules = tally
        .granules
        .into_iter()
        .map(|(granule, rows)| {
            let row = GranuleRow {
                granule: granule.clone(),
                rows,
                ..GranuleRow::default()
            };
            (granule, row)
        })
        .collect();
    add_runs(&mut summary, runs, granules);
    summary.histograms = numeric
        .iter()
        .zip(ranges)
        .map(|(name, range)| {
            let mut histogram = Histogram {
                name: name.clone(),
                count: 0,
                nulls: tally.rows,
                min: range.map(|range| range.0),
                max: range.map(|range| range.1),
                mean: None,
                low: range.map_or(0.0, |range| range.0),
                width: 1.0,
                bins: Vec::new(),
            };
            if let (Some((low, high)), Some(&level), Some((_, sums))) = (
                range,
                levels.get(name),
                tally.histograms.iter().find(|(column, _)| column == name),
            ) {
                let width = 2f64.powi(level);
                histogram.count = sums.count;
                histogram.nulls = tally.rows - sums.count;
                histogram.mean = (sums.count > 0).then(|| sums.sum / sums.count as f64);
                histogram.low = (low / width).floor() * width;
                histogram.width = width;
                histogram.bins = sums.dense(low, high);
            }
            histogram
        })
        .collect();
    summary.months = tally.months.into_iter().collect();
    Ok(summary)
}

/// Joins the run reports into the summary: segments read and time per
/// granule (`granules` holds the dataset's rows per granule), the failed and
/// skipped granules no later run did, and the runs themselves.
fn add_runs(
    summary: &mut Summary,
    runs: Vec<RunReport>,
    mut granules: BTreeMap<String, GranuleRow>,
) {
    let mut done = BTreeSet::new();
    for run in &runs {
        for detail in &run.details {
            done.insert(detail.granule.clone());
            let row = granules
                .entry(detail.granule.clone())
                .or_insert_with(|| GranuleRow {
                    granule: detail.granule.clone(),
                    ..GranuleRow::default()
                });
            row.segments = Some(detail.beams.iter().map(|beam| beam.segments).sum());
            row.seconds = Some(detail.seconds);
        }
    }
    summary.granules = granules.into_values().collect();
    let mut failed = BTreeMap::new();
    let mut skipped = BTreeMap::new();
    for run in &runs {
        for note in &run.granules.failed {
            failed.insert(note.granule.clone(), note.reason.clone());
        }
        for note in &run.skipped_granules {
            skipped.insert(note.granule.clone(), note.reason.clone());
        }
    }
    summary.failed = failed
        .into_iter()
        .filter(|(granule, _)| !done.contains(granule))
        .collect();
    summary.skipped = skipped
        .into_iter()
        .filter(|(granule, _)| !done.contains(granule))
        .collect();
    summary.runs = runs;
}

/// The map's extent (data and region, padded) and its square cells.
fn map_grid(
    longitude: Option<Range>,
    latitude: Option<Range>,
    region: &[Vec<[f64; 2]>],
) -> ([f64; 4], (f64, f64)) {
    let mut lon = (f64::INFINITY, f64::NEG_INFINITY);
    let mut lat = (f64::INFINITY, f64::NEG_INFINITY);
    let mut include = |x: f64, y: f64| {
        lon = (lon.0.min(x), lon.1.max(x));
        lat = (lat.0.min(y), lat.1.max(y));
    };
    if let (Some(lons), Some(lats)) = (longitude, latitude) {
        include(lons.0, lats.0);
        include(lons.1, lats.1);
    }
    for point in region.iter().flatten() {
        include(point[0], point[1]);
    }
    if !lon.0.is_finite() {
        lon = (-180.0, 180.0);
        lat = (-90.0, 90.0);
    }
    let pad = ((lon.1 - lon.0).max(lat.1 - lat.0) * 0.05).max(1e-4);
    let bounds = [lon.0 - pad, lat.0 - pad, lon.1 + pad, lat.1 + pad];
    let scale = ((bounds[1] + bounds[3]) / 2.0).to_radians().cos().max(0.05);
    // Square cells on the ground.
    let width =
        ((bounds[2] - bounds[0]) / MAP_CELLS).max((bounds[3] - bounds[1]) * scale / MAP_CELLS);
    (bounds, (width, width * scale))
}

/// The map: counted cells, colours, region and tracks.
fn map_data(
    bounds: [f64; 4],
    cell: (f64, f64),
    counted: &stats::Cells,
    color: Option<String>,
    region: Vec<Vec<[f64; 2]>>,
    tracks: (TrackLines, usize),
) -> MapData {
    let mut cells: Vec<Cell> = counted
        .iter()
        .map(|(&(x, y), sums)| Cell {
            lon: x as f64 * cell.0,
            lat: y as f64 * cell.1,
            value: (sums.values > 0)
                .then(|| sums.sum / sums.values as f64)
                .filter(|value| value.is_finite()),
            count: sums.rows,
        })
        .collect();
    cells.sort_by(|a, b| {
        (a.lon, a.lat)
            .partial_cmp(&(b.lon, b.lat))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let range = cells.iter().filter_map(|cell| cell.value).fold(
        None,
        |range: Option<(f64, f64)>, value| {
            Some(range.map_or((value, value), |(low, high)| {
                (low.min(value), high.max(value))
            }))
        },
    );
    let (tracks, selected) = tracks;
    MapData {
        bounds,
        cell,
        cells,
        variable: color,
        range,
        region,
        tracks,
        tracks_selected: selected,
    }
}

/// Pieces of track lines: (RGT, lon/lat points).
type TrackLines = Vec<(u16, Vec<(f64, f64)>)>;

/// The lines of the selected tracks (none when more than `MAX_TRACKS`)
/// across the latitudes of `bounds` (the map as drawn), split where they
/// cross the antimeridian or leave those latitudes; and how many were
/// selected. (On a map wide enough to hold both passes of one track, each
/// pass is a piece of its own, with its own label.)
fn track_lines(tracks: &BTreeSet<u16>, bounds: [f64; 4]) -> (TrackLines, usize) {
    use crate::orbit::track_point;
    if tracks.len() > MAX_TRACKS {
        return (Vec::new(), tracks.len());
    }
    // Only the points of the stretches that meet the map's latitudes: a
    // point's latitude depends on its argument of latitude alone, not on
    // the track, so the stretches are found once, and the trigonometry of
    // whole tracks (4,000 points each, 7% of the report's CPU on the bulk
    // benchmark's dataset) is left out. A track is cut where it leaves the
    // map's latitudes, as where it crosses the antimeridian.
    let u = |k: usize| std::f64::consts::TAU * k as f64 / TRACK_POINTS as f64;
    let latitudes: Vec<f64> = (0..=TRACK_POINTS).map(|k| track_point(1, u(k)).1).collect();
    let meets = |k: usize| {
        let (a, b) = (latitudes[k], latitudes[k + 1]);
        a.min(b) <= bounds[3] && a.max(b) >= bounds[1]
    };
    let stretches: Vec<bool> = (0..TRACK_POINTS).map(meets).collect();
    let lines = tracks
        .par_iter()
        .flat_map_iter(|&rgt| {
            let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
            // The index of the last piece's last point, while the next
            // stretch may continue it; and the last point worked out.
            let mut end: Option<usize> = None;
            let mut computed: Option<(usize, (f64, f64))> = None;
            for k in (0..TRACK_POINTS).filter(|&k| stretches[k]) {
                let a = match computed {
                    Some((index, point)) if index == k => point,
                    _ => track_point(rgt, u(k)),
                };
                let b = track_point(rgt, u(k + 1));
                computed = Some((k + 1, b));
                if (b.0 - a.0).abs() > 180.0 {
                    end = None;
                    continue;
                }
                if end != Some(k) {
                    pieces.push(vec![a]);
                }
                pieces.last_mut().expect("pushed above").push(b);
                end = Some(k + 1);
            }
            pieces
                .into_iter()
                .filter(|piece| piece.len() > 1)
                .map(move |piece| (rgt, piece))
        })
        .collect();
    (lines, tracks.len())
}

/// Text safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// An integer with thousands separators.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn number_cell(value: u64) -> String {
    format!(
        "<td class=\"n\" data-value=\"{value}\">{}</td>",
        grouped(value)
    )
}

fn optional_number(value: Option<f64>) -> String {
    value.map_or("&ndash;".to_string(), charts::short_number)
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222}\
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}\
.lead{color:#555;margin-top:0}table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;font-size:13px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:0}.histograms{display:flex;flex-wrap:wrap;gap:16px}\
.histogram{width:440px}.histogram table{margin:0}pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}\
.note{color:#666;font-size:13px}svg{max-width:100%;height:auto}";

/// The report as one self-contained HTML document.
pub fn render_html(summary: &Summary) -> Result<String, ReportError> {
    let mut html = String::new();
    let title = escape(&summary.title);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>icesat2 report: {title}</title><style>{STYLE}</style></head><body>\n\
         <h1>{title}</h1><p class=\"lead\">{} &middot; <span id=\"rows\" data-value=\"{}\">{}</span> segments \
         &middot; {} granules</p>\n",
        escape(&summary.dataset),
        summary.rows,
        grouped(summary.rows),
        summary.granules.iter().filter(|g| g.rows > 0).count(),
    );

    let map = charts::map_svg(&summary.map).map_err(ReportError)?;
    let _ = writeln!(
        html,
        "<section id=\"map\"><h2>Map</h2><figure>{map}<figcaption class=\"note\">{} segments on a grid of \
         {:.5}&deg; x {:.5}&deg; cells, coloured by {}. {}</figcaption></figure></section>",
        grouped(summary.rows),
        summary.map.cell.0,
        summary.map.cell.1,
        match &summary.map.variable {
            Some(name) => format!("the mean of {}", escape(name)),
            None => "the segment count".to_string(),
        },
        match (summary.map.tracks_selected, summary.map.tracks.is_empty()) {
            (0, _) => String::new(),
            (n, true) => format!("{n} tracks were selected (not drawn: more than {MAX_TRACKS})."),
            (n, false) => format!(
                "The {n} selected tracks (RGTs) are drawn from the orbit model, within about 3 km of NASA's."
            ),
        }
    );

    html.push_str("<section id=\"counts\"><h2>Counts</h2><h3>By beam</h3>");
    html.push_str("<table id=\"beams\"><thead><tr><th>beam</th><th>strength</th><th>segments kept</th></tr></thead><tbody>");
    for (beam, strength, rows) in &summary.beams {
        let _ = write!(
            html,
            "<tr data-beam=\"{0}\" data-strength=\"{1}\"><td>{0}</td><td>{1}</td>{2}</tr>",
            escape(beam),
            escape(strength),
            number_cell(*rows)
        );
    }
    let mut by_strength: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, strength, rows) in &summary.beams {
        *by_strength.entry(strength.as_str()).or_default() += rows;
    }
    html.push_str("</tbody></table><table id=\"strengths\"><thead><tr><th>strength</th><th>segments kept</th></tr></thead><tbody>");
    for (strength, rows) in by_strength {
        let _ = write!(
            html,
            "<tr data-strength=\"{0}\"><td>{0}</td>{1}</tr>",
            escape(strength),
            number_cell(rows)
        );
    }
    html.push_str("</tbody></table><h3>By granule</h3><table id=\"granules\"><thead><tr><th>granule</th>\
                   <th>segments kept</th><th>segments read</th><th>seconds</th></tr></thead><tbody>");
    for row in &summary.granules {
        let _ = write!(
            html,
            "<tr data-granule=\"{0}\"><td>{0}</td>{1}{2}<td class=\"n\">{3}</td></tr>",
            escape(&row.granule),
            number_cell(row.rows),
            row.segments
                .map_or("<td class=\"n\">&ndash;</td>".to_string(), number_cell),
            row.seconds
                .map_or("&ndash;".to_string(), |s| format!("{s:.2}")),
        );
    }
    html.push_str("</tbody></table></section>\n");

    html.push_str("<section id=\"problems\"><h2>Failed and skipped granules</h2>");
    for (id, label, notes) in [
        ("failed", "Failed", &summary.failed),
        ("skipped", "Skipped", &summary.skipped),
    ] {
        let _ = write!(html, "<h3>{label} ({})</h3>", notes.len());
        if notes.is_empty() {
            html.push_str("<p class=\"note\">None.</p>");
            continue;
        }
        let _ = write!(
            html,
            "<table id=\"{id}\"><thead><tr><th>granule</th><th>reason</th></tr></thead><tbody>"
        );
        for (granule, reason) in notes {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(granule),
                escape(reason)
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"variables\"><h2>Variables</h2><div class=\"histograms\">");
    for histogram in &summary.histograms {
        let svg = charts::histogram_svg(histogram).map_err(ReportError)?;
        let _ = write!(
            html,
            "<figure class=\"histogram\" data-variable=\"{name}\" data-bins=\"{bins}\">{svg}\
             <table class=\"stats\"><tr><th>values</th>{count}<th>nulls</th>{nulls}</tr>\
             <tr><th>min</th><td class=\"n\" data-value=\"{min_raw}\">{min}</td><th>max</th>\
             <td class=\"n\" data-value=\"{max_raw}\">{max}</td><th>mean</th><td class=\"n\">{mean}</td></tr></table></figure>",
            name = escape(&histogram.name),
            bins = histogram
                .bins
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            count = number_cell(histogram.count),
            nulls = number_cell(histogram.nulls),
            min_raw = histogram.min.map_or(String::new(), |v| v.to_string()),
            max_raw = histogram.max.map_or(String::new(), |v| v.to_string()),
            min = optional_number(histogram.min),
            max = optional_number(histogram.max),
            mean = optional_number(histogram.mean),
        );
    }
    html.push_str("</div>");
    if !summary.not_drawn.is_empty() {
        let names: Vec<String> = summary
            .not_drawn
            .iter()
            .map(|(name, kind)| format!("{} ({})", escape(name), escape(kind)))
            .collect();
        let _ = write!(
            html,
            "<p class=\"note\">Not drawn (not scalar numbers): {}.</p>",
            names.join(", ")
        );
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"time\"><h2>Time coverage</h2>");
    match &summary.time_range {
        Some((first, last)) => {
            let _ = write!(
                html,
                "<p>From <time id=\"first\">{}</time> to <time id=\"last\">{}</time> (UTC).</p>",
                escape(first),
                escape(last)
            );
        }
        None => html.push_str("<p class=\"note\">No segment has a time.</p>"),
    }
    html.push_str(
        "<table id=\"months\"><thead><tr><th>month</th><th>segments</th></tr></thead><tbody>",
    );
    for (month, rows) in &summary.months {
        let _ = write!(
            html,
            "<tr data-month=\"{0}\"><td>{0}</td>{1}</tr>",
            escape(month),
            number_cell(*rows)
        );
    }
    html.push_str("</tbody></table></section>\n");

    html.push_str("<section id=\"runs\"><h2>Runs</h2><table><thead><tr><th>run</th><th>shard</th>\
                   <th>planned</th><th>done</th><th>already done</th><th>skipped</th><th>failed</th>\
                   <th>rows written</th><th>MB read</th><th>requests</th><th>seconds</th></tr></thead><tbody>");
    for run in &summary.runs {
        let tally = &run.granules;
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td>{}{}{}{}{}{}<td class=\"n\">{:.1}</td>{}<td class=\"n\">{:.1}</td></tr>",
            escape(&run.run_id),
            escape(run.shard.as_deref().unwrap_or("")),
            number_cell(tally.planned),
            number_cell(tally.done),
            number_cell(tally.already_done),
            number_cell(tally.skipped),
            number_cell(tally.failed.len() as u64),
            number_cell(run.rows_written),
            run.bytes_read as f64 / 1e6,
            number_cell(run.requests),
            run.timings.total_s,
        );
    }
    html.push_str("</tbody></table>");
    if let Some(run) = summary.runs.last() {
        let _ = write!(
            html,
            "<h3>Manifest</h3><p class=\"note\">{} (sha256 {})</p><pre id=\"manifest\">{}</pre>",
            escape(&run.manifest),
            escape(&run.manifest_sha256),
            escape(&run.manifest_text)
        );
    }
    html.push_str("</section>\n</body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    /// The segments of the whole model track (as drawn before only the
    /// stretches meeting the map were worked out), cut at the antimeridian.
    fn whole_track_segments(rgt: u16) -> Vec<((f64, f64), (f64, f64))> {
        crate::orbit::track_line(rgt, TRACK_POINTS)
            .windows(2)
            .filter(|pair| (pair[1].0 - pair[0].0).abs() <= 180.0)
            .map(|pair| (pair[0], pair[1]))
            .collect()
    }

    fn segments(lines: &TrackLines, rgt: u16) -> Vec<((f64, f64), (f64, f64))> {
        lines
            .iter()
            .filter(|(track, _)| *track == rgt)
            .flat_map(|(_, line)| line.windows(2).map(|pair| (pair[0], pair[1])))
            .collect()
    }

    /// The segments of the whole model track whose latitudes meet those of
    /// `bounds`.
    fn segments_meeting(rgt: u16, bounds: [f64; 4]) -> Vec<((f64, f64), (f64, f64))> {
        whole_track_segments(rgt)
            .into_iter()
            .filter(|(a, b)| a.1.min(b.1) <= bounds[3] && a.1.max(b.1) >= bounds[1])
            .collect()
    }

    #[test]
    fn track_lines_hold_every_segment_that_meets_the_map_and_no_other() {
        let tracks: BTreeSet<u16> = [1, 594, 1387].into();
        // The whole globe: whole tracks, as before, in one piece between
        // antimeridian crossings.
        let (world, selected) = track_lines(&tracks, [-180.0, -90.0, 180.0, 90.0]);
        assert_eq!(selected, 3);
        for &rgt in &tracks {
            assert_eq!(segments(&world, rgt), whole_track_segments(rgt));
        }
        // A box of Tasmania: the segments whose latitudes meet the box's,
        // bit for bit the points of the whole track, and nothing else.
        let bounds = [145.0, -44.0, 149.0, -40.5];
        let (lines, _) = track_lines(&tracks, bounds);
        for &rgt in &tracks {
            let expected = segments_meeting(rgt, bounds);
            assert!(!expected.is_empty());
            assert!(expected.len() < TRACK_POINTS / 20, "{}", expected.len());
            assert_eq!(segments(&lines, rgt), expected, "RGT {rgt}");
        }
        // Ascending and descending passes: two pieces a track.
        assert_eq!(lines.iter().filter(|(rgt, _)| *rgt == 1).count(), 2);
        // A wide box is drawn taller than its data (true aspect): the lines
        // cover the latitudes drawn, not only the data's.
        let data = [0.0, 45.0, 10.0, 46.0];
        let drawn = charts::plot_bounds(data);
        assert!(
            drawn[1] < data[1] - 1.0 && drawn[3] > data[3] + 1.0,
            "{drawn:?}"
        );
        let (lines, _) = track_lines(&tracks, drawn);
        for &rgt in &tracks {
            assert_eq!(
                segments(&lines, rgt),
                segments_meeting(rgt, drawn),
                "RGT {rgt}"
            );
        }
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
