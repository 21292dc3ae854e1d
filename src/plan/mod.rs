//! A validated `Plan`: the prepared region, the granule request, resolved
//! paths, the granule list with what is skipped and why. Everything a bad
//! manifest can get wrong is found here, before any granule is read or any
//! output is created.

mod source;
pub mod tracks;

pub use source::{CmrSource, Source};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::catalog::cmr;
use crate::catalog::{self, GranuleRef};
use crate::granule::variables::Level;
use crate::granule::{
    BEAMS, BeamSelection, GranuleName, OutputVariable, Request, Resolution, TimeWindow,
    output_schema, variables,
};
use crate::manifest::{BeamsSpec, Manifest, ManifestError};
use crate::region::Region;
use crate::sink::{Output, PartitionKey, WriterSettings};
use crate::store::Access;
use tracks::{TrackLines, TrackSelection};

/// NSIDC's endpoint for temporary S3 credentials.
pub const CREDENTIALS_URL: &str = "https://data.nsidc.earthdatacloud.nasa.gov/s3credentials";
/// The default CMR provider of ATL08.
pub const PROVIDER: &str = "NSIDC_CPRD";

/// The default buffer for ground-track selection, degrees (the notebook's).
pub const DEFAULT_TRACK_BUFFER_DEG: f64 = 0.3;

/// A bad manifest, found while planning: `{manifest}: {field}: {message}`.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{manifest}: {field}: {message}")]
    Field {
        manifest: String,
        field: String,
        message: String,
    },
}

/// A granule of the plan and whether the run reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedGranule {
    pub granule: GranuleRef,
    /// Why it is skipped without being opened, if it is.
    pub skip: Option<String>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub manifest_path: PathBuf,
    pub manifest_sha256: String,
    /// What the rows depend on but the time window and the granules
    /// (`dataset_sha256`): runs that share it grow one dataset.
    pub dataset_sha256: String,
    /// `update: newer_revisions`: a newer revision or release of a granule
    /// the dataset holds replaces it.
    pub replace_newer: bool,
    /// The manifest text, for the run report.
    pub manifest_text: String,
    pub request: Request,
    /// The release read: the manifest's, or for a `cmr` source without one
    /// the newest CMR lists.
    pub release: Option<String>,
    /// The CMR collection searched (`cmr` source): its concept id and how
    /// it was chosen, e.g. `C3565574177-NSIDC_CPRD (ATL08 version 007, the
    /// newest CMR lists)`.
    pub collection: Option<String>,
    pub track_buffer_deg: f64,
    /// RGTs crossing the buffered region and the granule regions it touches.
    pub tracks: TrackSelection,
    /// How the granule list was made (`local`, `urls`, `cmr rgt`, `cmr spatial`).
    pub source_kind: String,
    /// Clients for remote granules.
    pub access: Arc<Access>,
    pub output: Output,
    pub partition_by: Vec<PartitionKey>,
    /// File sizes, buffering and checkpoints of the dataset writer.
    pub writer: WriterSettings,
    pub granules: Vec<PlannedGranule>,
    /// Notes from planning (duplicate names, ...), copied into the run report.
    pub warnings: Vec<String>,
}

/// The writer's settings from `output:`, each checked; errors name the field.
fn writer_settings(
    spec: &crate::manifest::OutputSpec,
) -> Result<WriterSettings, (&'static str, String)> {
    let defaults = WriterSettings::default();
    let positive = |field: &'static str, value: Option<f64>, default: f64| match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        Some(v) => Err((field, format!("must be a positive number, not {v}"))),
    };
    let count = |field: &'static str, value: Option<u64>, default: u64| match value {
        None => Ok(default),
        Some(0) => Err((field, "must be at least 1".to_string())),
        Some(v) => Ok(v),
    };
    const MB: f64 = 1024.0 * 1024.0;
    let zstd_level = match spec.zstd_level {
        None => defaults.zstd_level,
        Some(level) if (1..=22).contains(&level) => level,
        Some(level) => return Err(("zstd_level", format!("must be 1 to 22, not {level}"))),
    };
    Ok(WriterSettings {
        zstd_level,
        row_group_rows: count(
            "row_group_rows",
            spec.row_group_rows,
            defaults.row_group_rows as u64,
        )? as usize,
        file_bytes: (positive("file_mb", spec.file_mb, defaults.file_bytes as f64 / MB)? * MB)
            as u64,
        buffer_bytes: (positive(
            "buffer_mb",
            spec.buffer_mb,
            defaults.buffer_bytes as f64 / MB,
        )? * MB) as usize,
        checkpoint_granules: count(
            "checkpoint_granules",
            spec.checkpoint_granules,
            defaults.checkpoint_granules,
        )?,
        checkpoint_seconds: positive(
            "checkpoint_minutes",
            spec.checkpoint_minutes,
            defaults.checkpoint_seconds / 60.0,
        )? * 60.0,
    })
}

/// The first stage of planning: the manifest validated into everything a
/// run needs but its granules and clients, with no network I/O (files the
/// manifest names are read: the region, orbits; paths are checked).
/// `resolve` is the second stage (ripgrep's low-level and high-level
/// arguments).
#[derive(Debug, Clone)]
pub struct Validated {
    pub name: String,
    pub manifest_path: PathBuf,
    pub manifest_sha256: String,
    pub dataset_sha256: String,
    pub replace_newer: bool,
    pub manifest_text: String,
    pub request: Request,
    /// The manifest's release, if it gives one.
    pub release: Option<String>,
    pub track_buffer_deg: f64,
    pub tracks: TrackSelection,
    pub source: Source,
    /// The time window as CMR takes it.
    pub temporal: cmr::Temporal,
    pub output: Output,
    pub partition_by: Vec<PartitionKey>,
    pub writer: WriterSettings,
}

impl Plan {
    /// Loads, validates and plans a manifest file: `validate`, then
    /// `Validated::resolve`.
    pub fn load(manifest_path: &Path) -> Result<Plan, PlanError> {
        Plan::validate(manifest_path)?.resolve()
    }

    /// The first stage alone: reads and validates a manifest file.
    pub fn validate(manifest_path: &Path) -> Result<Validated, PlanError> {
        let manifest = Manifest::load(manifest_path)?;
        let text =
            std::fs::read_to_string(manifest_path).map_err(|source| ManifestError::Read {
                file: manifest_path.display().to_string(),
                source,
            })?;
        Validated::from_manifest(manifest, manifest_path, text)
    }

    /// Granules the run reads.
    pub fn to_read(&self) -> impl Iterator<Item = &PlannedGranule> {
        self.granules
            .iter()
            .filter(|granule| granule.skip.is_none())
    }
}

impl Validated {
    /// Validates a parsed manifest; relative paths resolve against
    /// `manifest_path`'s folder.
    pub fn from_manifest(
        manifest: Manifest,
        manifest_path: &Path,
        text: String,
    ) -> Result<Validated, PlanError> {
        let base = manifest_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let label = manifest_path.display().to_string();
        let field_error = |field: &str, message: String| PlanError::Field {
            manifest: label.clone(),
            field: field.to_string(),
            message,
        };

        let name = match &manifest.name {
            Some(name) if name.trim().is_empty() => {
                return Err(field_error("name", "must not be empty".into()));
            }
            Some(name) => name.clone(),
            None => manifest_path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into()),
        };
        if !manifest.product.eq_ignore_ascii_case("ATL08") {
            return Err(field_error(
                "product",
                format!("'{}' is not supported; only ATL08", manifest.product),
            ));
        }
        let release = match &manifest.release {
            Some(release)
                if release.0.len() == 3 && release.0.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(release.0.clone())
            }
            Some(release) => {
                return Err(field_error(
                    "release",
                    format!("'{}' is not a release such as \"006\"", release.0),
                ));
            }
            None => None,
        };
        let time_window =
            time_window(&manifest).map_err(|(field, message)| field_error(field, message))?;

        // Region.
        let spec = &manifest.region;
        let given = [
            spec.geojson.is_some(),
            spec.bbox.is_some(),
            spec.geometry.is_some(),
        ]
        .iter()
        .filter(|given| **given)
        .count();
        if given != 1 {
            return Err(field_error(
                "region",
                "give exactly one of `geojson`, `bbox`, `geometry`".into(),
            ));
        }
        let region = if let Some(file) = &spec.geojson {
            let path = resolve(&base, file);
            let text = std::fs::read_to_string(&path).map_err(|err| {
                field_error(
                    "region.geojson",
                    format!("{}: cannot read: {err}", path.display()),
                )
            })?;
            Region::from_geojson_str(&text, &path.display().to_string())
                .map_err(|err| field_error("region.geojson", err.to_string()))?
        } else if let Some(bbox) = &spec.bbox {
            let bbox: [f64; 4] = bbox.as_slice().try_into().map_err(|_| {
                field_error(
                    "region.bbox",
                    format!("needs 4 numbers [W, S, E, N], got {}", bbox.len()),
                )
            })?;
            Region::from_bbox(bbox, "bbox")
                .map_err(|err| field_error("region.bbox", err.to_string()))?
        } else {
            let value = spec.geometry.clone().unwrap_or_default();
            Region::from_json_value(value, "inline geometry")
                .map_err(|err| field_error("region.geometry", err.to_string()))?
        };
        let track_buffer_deg = spec.track_buffer_deg.unwrap_or(DEFAULT_TRACK_BUFFER_DEG);
        if !track_buffer_deg.is_finite() || !(0.0..=10.0).contains(&track_buffer_deg) {
            return Err(field_error(
                "region.track_buffer_deg",
                format!("{track_buffer_deg} is not a buffer between 0 and 10 degrees"),
            ));
        }
        let track_lines = match &spec.orbits {
            Some(orbits) => {
                let path = resolve(&base, orbits);
                TrackLines::File(
                    tracks::load_orbits(&path)
                        .map_err(|message| field_error("region.orbits", message))?,
                )
            }
            None => TrackLines::Model,
        };
        let tracks = tracks::select(&region, track_buffer_deg, &track_lines);

        // Partitioning first: its columns are reserved names.
        let mut partition_by = Vec::new();
        for (index, key) in manifest.output.partition_by.iter().enumerate() {
            let parsed = PartitionKey::parse(key).ok_or_else(|| {
                field_error(
                    &format!("output.partition_by[{index}]"),
                    format!("'{key}' is not one of year, month, rgt, cycle, beam"),
                )
            })?;
            if partition_by.contains(&parsed) {
                return Err(field_error(
                    &format!("output.partition_by[{index}]"),
                    format!("'{key}' is listed twice"),
                ));
            }
            partition_by.push(parsed);
        }

        // Variables and their column names.
        let mut variables_out: Vec<OutputVariable> = Vec::new();
        for (index, spec) in manifest.variables.iter().enumerate() {
            let field = format!("variables[{index}]");
            let path = spec.path.trim_matches('/');
            let Some(entry) = variables::lookup(path) else {
                let hint = match variables::suggest(path) {
                    Some(near) => format!("; did you mean '{near}'?"),
                    None => String::new(),
                };
                return Err(field_error(
                    &field,
                    format!("unknown ATL08 variable '{}'{hint}", spec.path),
                ));
            };
            let column = spec
                .name
                .clone()
                .unwrap_or_else(|| entry.name().to_string());
            if column.is_empty() || column.contains(['/', '=', '\n']) {
                return Err(field_error(
                    &field,
                    format!("'{column}' is not a usable column name"),
                ));
            }
            let reserved = crate::granule::columns::is_fixed_column(&column)
                || partition_by.iter().any(|key| key.column() == column);
            if reserved || variables_out.iter().any(|existing| existing.name == column) {
                return Err(field_error(
                    &field,
                    format!(
                        "two output columns would be named '{column}'; give this variable another `name:`"
                    ),
                ));
            }
            variables_out.push(OutputVariable {
                spec: entry,
                name: column,
            });
        }

        let resolution = match manifest.resolution.as_deref() {
            None | Some("100m") => Resolution::Segment,
            Some("20m") => Resolution::Subsegment,
            Some(other) => {
                return Err(field_error(
                    "resolution",
                    format!("'{other}' is not 100m or 20m"),
                ));
            }
        };
        if resolution == Resolution::Subsegment
            && let Some(index) = variables_out
                .iter()
                .position(|variable| variable.spec.level == Level::Photon)
        {
            return Err(field_error(
                &format!("variables[{index}]"),
                format!(
                    "'{}' is a photon variable, one list per 100 m segment; resolution 20m takes \
                     land segment variables",
                    variables_out[index].spec.path
                ),
            ));
        }

        let replace_newer = match manifest.update.as_deref() {
            None | Some("none") => false,
            Some("newer_revisions") => true,
            Some(other) => {
                return Err(field_error(
                    "update",
                    format!("'{other}' is not none or newer_revisions"),
                ));
            }
        };

        // Filters.
        let beams = match &manifest.filters.beams {
            BeamsSpec::Word(word) => match word.as_str() {
                "all" => BeamSelection::All,
                "strong" => BeamSelection::Strong,
                "weak" => BeamSelection::Weak,
                other => {
                    return Err(field_error(
                        "filters.beams",
                        format!("'{other}' is not all, strong, weak or a list of beams"),
                    ));
                }
            },
            BeamsSpec::List(list) => {
                if list.is_empty() {
                    return Err(field_error(
                        "filters.beams",
                        "the list of beams is empty".into(),
                    ));
                }
                for beam in list {
                    if !BEAMS.contains(&beam.as_str()) {
                        return Err(field_error(
                            "filters.beams",
                            format!("'{beam}' is not a beam (gt1l, gt1r, gt2l, gt2r, gt3l, gt3r)"),
                        ));
                    }
                }
                BeamSelection::Named(list.clone())
            }
        };
        for (index, column) in manifest.filters.drop_fill.iter().enumerate() {
            let field = format!("filters.drop_fill[{index}]");
            match variables_out
                .iter()
                .find(|variable| &variable.name == column)
            {
                Some(variable)
                    if variable.is_scalar()
                        || (resolution == Resolution::Subsegment && variable.is_per_20m()) => {}
                Some(_) => {
                    return Err(field_error(
                        &field,
                        format!("'{column}' is a list column; drop_fill takes scalar columns"),
                    ));
                }
                None => {
                    let names: Vec<&str> = variables_out.iter().map(|v| v.name.as_str()).collect();
                    let hint = names
                        .iter()
                        .min_by_key(|name| strsim::levenshtein(name, column))
                        .filter(|name| strsim::levenshtein(name, column) <= 3)
                        .map(|name| format!("; did you mean '{name}'?"))
                        .unwrap_or_default();
                    return Err(field_error(
                        &field,
                        format!("'{column}' is not a requested variable column{hint}"),
                    ));
                }
            }
        }

        // Output.
        let output_text = manifest
            .output
            .path
            .clone()
            .unwrap_or_else(|| format!("out/{name}"));
        let output = if output_text.starts_with("s3://") {
            Output::s3(&output_text).map_err(|message| field_error("output.path", message))?
        } else if output_text.contains("://") {
            return Err(field_error(
                "output.path",
                format!("'{output_text}': give a folder or an s3:// prefix"),
            ));
        } else {
            let folder = resolve(&base, &output_text);
            if folder.exists() && !folder.is_dir() {
                return Err(field_error(
                    "output.path",
                    format!("{} exists and is not a folder", folder.display()),
                ));
            }
            Output::Local(folder)
        };

        match manifest.output.order.as_deref() {
            None | Some("granule") => {}
            Some("hilbert") => {
                return Err(field_error(
                    "output.order",
                    "hilbert (rows sorted along a space-filling curve) is not built yet; \
                     give granule (rows as the granules were read) or leave it out"
                        .into(),
                ));
            }
            Some(other) => {
                return Err(field_error(
                    "output.order",
                    format!("'{other}' is not granule or hilbert"),
                ));
            }
        }
        let writer = writer_settings(&manifest.output)
            .map_err(|(field, message)| field_error(&format!("output.{field}"), message))?;

        let source = Source::validate(&manifest.source, &base)
            .map_err(|(field, message)| field_error(&field, message))?;
        let temporal = cmr_temporal(&manifest, time_window);
        let schema = match resolution {
            Resolution::Segment => output_schema(&variables_out),
            Resolution::Subsegment => crate::granule::columns::output_schema_20m(&variables_out),
        };
        let row_filter = match &manifest.filters.where_sql {
            Some(sql) => Some(
                crate::filter::compile(sql, &schema, resolution)
                    .map_err(|message| field_error("filters.where", message))?,
            ),
            None => None,
        };
        let request = Request {
            variables: variables_out,
            beams,
            night_only: manifest.filters.night_only,
            drop_fill: manifest.filters.drop_fill.clone(),
            time_window,
            except_window: None,
            row_filter,
            region: Arc::new(region),
            resolution,
            schema,
        };
        let manifest_sha256 = hex(&Sha256::digest(text.as_bytes()));
        let dataset_sha256 = dataset_sha256(&manifest, release.as_deref(), &request, &partition_by);
        Ok(Validated {
            name,
            manifest_path: manifest_path.to_path_buf(),
            manifest_sha256,
            dataset_sha256,
            replace_newer,
            manifest_text: text,
            request,
            release,
            track_buffer_deg,
            tracks,
            source,
            temporal,
            output,
            partition_by,
            writer,
        })
    }

    /// The second stage: lists the granules (a local folder, or a CMR
    /// search), reads the credentials and makes the clients that will read
    /// the granules, and says which granules are skipped and why.
    pub fn resolve(self) -> Result<Plan, PlanError> {
        let label = self.manifest_path.display().to_string();
        let resolved = self
            .source
            .resolve(source::Wanted {
                release: self.release.as_deref(),
                region: &self.request.region,
                tracks: &self.tracks,
                temporal: self.temporal,
            })
            .map_err(|(field, message)| PlanError::Field {
                manifest: label,
                field,
                message,
            })?;
        let release = resolved.release;
        let tracks = self.tracks;
        let time_window = self.request.time_window;
        let granule_refs = resolved.refs;
        let prune_by_track = resolved.prune_by_track;
        let superseded = catalog::superseded(&granule_refs);
        let granules = granule_refs
            .into_iter()
            .zip(superseded)
            .map(|(granule, superseded)| {
                let skip = skip_reason(
                    &granule,
                    release.as_deref(),
                    time_window,
                    prune_by_track.then_some(&tracks),
                )
                .or(superseded);
                PlannedGranule { granule, skip }
            })
            .collect();

        Ok(Plan {
            name: self.name,
            manifest_path: self.manifest_path,
            manifest_sha256: self.manifest_sha256,
            dataset_sha256: self.dataset_sha256,
            replace_newer: self.replace_newer,
            manifest_text: self.manifest_text,
            request: self.request,
            release,
            collection: resolved.collection,
            track_buffer_deg: self.track_buffer_deg,
            tracks,
            source_kind: resolved.kind,
            access: Arc::new(resolved.access),
            output: self.output,
            partition_by: self.partition_by,
            writer: self.writer,
            granules,
            warnings: resolved.warnings,
        })
    }
}

/// A CMR polygon: the outer ring, counter-clockwise, closed, `lon,lat,...`.
fn cmr_polygon(polygon: &geo::Polygon<f64>) -> String {
    use geo::Winding;
    let mut ring = polygon.exterior().clone();
    ring.make_ccw_winding();
    ring.coords()
        .map(|c| format!("{},{}", c.x, c.y))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a granule is skipped by its name alone, if it is: release, time
/// window, and (for track searches and local files) its RGT and granule region.
/// The hash of what a dataset's rows depend on, but the time window and
/// the granules a source offers: the product, release, region (its rings,
/// not the file that held them), variables and their column names,
/// filters and partitioning. A run whose manifest differs from the
/// dataset's only by time and source grows the dataset (`journal::Identity`).
fn dataset_sha256(
    manifest: &Manifest,
    release: Option<&str>,
    request: &Request,
    partition_by: &[PartitionKey],
) -> String {
    let rings: Vec<Vec<[f64; 2]>> = request
        .region
        .polygons()
        .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
        .map(|ring| ring.coords().map(|c| [c.x, c.y]).collect())
        .collect();
    let identity = serde_json::json!({
        "product": manifest.product.to_ascii_uppercase(),
        "release": release,
        "region": rings,
        "variables": request
            .variables
            .iter()
            .map(|variable| [variable.spec.path, variable.name.as_str()])
            .collect::<Vec<_>>(),
        "beams": format!("{:?}", request.beams),
        "night_only": request.night_only,
        "drop_fill": request.drop_fill,
        "where": manifest.filters.where_sql,
        "resolution": format!("{:?}", request.resolution),
        "partition_by": partition_by.iter().map(|key| key.column()).collect::<Vec<_>>(),
    });
    hex(&Sha256::digest(identity.to_string().as_bytes()))
}

fn skip_reason(
    granule: &GranuleRef,
    release: Option<&str>,
    window: Option<TimeWindow>,
    tracks: Option<&TrackSelection>,
) -> Option<String> {
    if let Err(problem) = crate::catalog::check_name(&granule.name) {
        return Some(problem);
    }
    let name = GranuleName::parse(&granule.name)?;
    if let Some(reason) = tracks.and_then(|tracks| tracks.excludes(name.rgt, name.region)) {
        return Some(reason);
    }
    if let Some(release) = release
        && name.release != release
    {
        return Some(format!(
            "release {} (the manifest asks for {release})",
            name.release
        ));
    }
    if let Some(window) = window {
        // A granule spans about 510 s; its name gives the start.
        let end = name.start + chrono::Duration::seconds(600);
        if !window.meets(name.start, end) {
            return Some("outside the time window".to_string());
        }
    }
    None
}

/// CMR's `temporal` for the manifest's window: only the ends it gives
/// (`start,` or `,end` when one is left open).
fn cmr_temporal(manifest: &Manifest, window: Option<TimeWindow>) -> cmr::Temporal {
    let (Some(time), Some(window)) = (&manifest.time, window) else {
        return cmr::Temporal::default();
    };
    cmr::Temporal {
        start: time
            .start
            .as_ref()
            .and_then(|_| DateTime::from_timestamp_micros(window.start_us)),
        end: time
            .end
            .as_ref()
            .and_then(|_| DateTime::from_timestamp_micros(window.end_us)),
    }
}

/// The manifest's time window (inclusive); a date-only end includes that
/// whole day. Either end may be left out: the window is then open there.
fn time_window(manifest: &Manifest) -> Result<Option<TimeWindow>, (&'static str, String)> {
    let Some(time) = &manifest.time else {
        return Ok(None);
    };
    let start = match &time.start {
        Some(text) => parse_instant(text, false).map_err(|message| ("time.start", message))?,
        None => DateTime::<Utc>::MIN_UTC,
    };
    let end = match &time.end {
        Some(text) => parse_instant(text, true).map_err(|message| ("time.end", message))?,
        None => DateTime::<Utc>::MAX_UTC,
    };
    if end < start {
        return Err((
            "time.end",
            format!(
                "{} is before time.start {}",
                end.to_rfc3339(),
                start.to_rfc3339()
            ),
        ));
    }
    Ok(Some(TimeWindow {
        start_us: start.timestamp_micros(),
        end_us: end.timestamp_micros(),
    }))
}

/// A date (`2019-01-31`) or an RFC 3339 instant. A date as an end means the
/// last microsecond of that day.
fn parse_instant(text: &str, is_end: bool) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if is_end {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        let instant = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Ok(if is_end {
            instant - chrono::Duration::microseconds(1)
        } else {
            instant
        });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| format!("'{text}' is neither a date (2019-01-31) nor an RFC 3339 instant (2019-01-31T12:00:00Z)"))
}

/// A manifest path: `~/` expands to the home folder; relative paths resolve against `base`.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_end_includes_the_whole_day() {
        let end = parse_instant("2019-01-31", true).unwrap();
        assert_eq!(end.to_rfc3339(), "2019-01-31T23:59:59.999999+00:00");
        let start = parse_instant("2019-01-01", false).unwrap();
        assert_eq!(start.to_rfc3339(), "2019-01-01T00:00:00+00:00");
        let instant = parse_instant("2019-01-31T12:00:00+02:00", true).unwrap();
        assert_eq!(instant.to_rfc3339(), "2019-01-31T10:00:00+00:00");
        assert!(
            parse_instant("31/01/2019", false)
                .unwrap_err()
                .contains("'31/01/2019'")
        );
    }

    #[test]
    fn resolves_relative_paths_against_the_manifest() {
        assert_eq!(
            resolve(Path::new("/a/b"), "poly.json"),
            PathBuf::from("/a/b/poly.json")
        );
        assert_eq!(
            resolve(Path::new("/a/b"), "/c/poly.json"),
            PathBuf::from("/c/poly.json")
        );
    }
}

/// One worker's share of a run: `--shard K/N`, K in 0..N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `K/N` (0-based K, K < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard '{text}': expected K/N, e.g. 0/4"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("--shard '{text}': K is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("--shard '{text}': N is not a number"))?;
        if count == 0 {
            return Err(format!("--shard '{text}': N must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "--shard '{text}': K must be less than N (shards are numbered 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether granule `name` belongs to this shard: a stable hash of the
    /// name, so every worker agrees without talking to the others.
    pub fn owns(&self, name: &str) -> bool {
        let digest = Sha256::digest(name.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod shard_tests {
    use super::Shard;

    #[test]
    fn shards_partition_names() {
        let names: Vec<String> = (0..200).map(|i| format!("ATL08_{i:04}.h5")).collect();
        let shards: Vec<Shard> = (0..3)
            .map(|k| Shard::parse(&format!("{k}/3")).unwrap())
            .collect();
        for name in &names {
            assert_eq!(shards.iter().filter(|shard| shard.owns(name)).count(), 1);
        }
        assert!(
            shards
                .iter()
                .all(|shard| names.iter().filter(|n| shard.owns(n)).count() > 40)
        );
        assert!(
            Shard::parse("3/3")
                .unwrap_err()
                .contains("K must be less than N")
        );
        assert!(Shard::parse("1/0").is_err());
        assert!(Shard::parse("x").is_err());
    }
}
