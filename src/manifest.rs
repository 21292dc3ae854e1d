//! The YAML manifest as written: shape and field checks only. `plan::Plan`
//! turns it into prepared objects; nothing after planning sees raw YAML.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A bad manifest: the file, and a one-line reason naming the field or line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
}

/// The manifest, field for field (see PRODUCT.md and the README).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Run name; defaults to the manifest's file stem.
    pub name: Option<String>,
    /// Product short name; only `ATL08`.
    #[serde(default = "default_product")]
    pub product: String,
    /// Release such as "006"; all releases when absent.
    pub release: Option<ReleaseSpec>,
    /// Time window; all time when absent.
    pub time: Option<TimeSpec>,
    pub region: RegionSpec,
    /// Variables under each beam group; none (only the derived columns) when absent.
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
    #[serde(default)]
    pub filters: FiltersSpec,
    /// `100m` (a row per land segment, the default) or `20m` (a row per
    /// 20 m sub-segment).
    pub resolution: Option<String>,
    /// `none` (default) or `newer_revisions`: a newer revision or release
    /// of a granule the dataset holds replaces it.
    pub update: Option<String>,
    pub source: SourceSpec,
    #[serde(default)]
    pub output: OutputSpec,
}

fn default_product() -> String {
    "ATL08".to_string()
}

/// A release written as a string ("006") or a number (6).
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseSpec(pub String);

impl<'de> Deserialize<'de> for ReleaseSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReleaseVisitor;
        impl Visitor<'_> for ReleaseVisitor {
            type Value = ReleaseSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a release such as \"006\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ReleaseSpec, E> {
                Ok(ReleaseSpec(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ReleaseSpec, E> {
                Ok(ReleaseSpec(format!("{value:03}")))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ReleaseSpec, E> {
                Ok(ReleaseSpec(format!("{value:03}")))
            }
        }
        deserializer.deserialize_any(ReleaseVisitor)
    }
}

/// `time: { start, end }`: dates (`2019-01-01`) or RFC 3339 instants, UTC.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// `region:`: exactly one of `geojson`, `bbox`, `geometry`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// GeoJSON file, relative to the manifest.
    pub geojson: Option<String>,
    /// `[west, south, east, north]`, degrees.
    pub bbox: Option<Vec<f64>>,
    /// Inline GeoJSON (geometry, feature or feature collection).
    pub geometry: Option<serde_json::Value>,
    /// Buffer for ground-track selection, degrees (default 0.3).
    pub track_buffer_deg: Option<f64>,
    /// RGT lines (GeoJSON, the notebook's format); default: the built-in model.
    pub orbits: Option<String>,
}

/// A variable: a path, or `{ path, name }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableSpec {
    pub path: String,
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for VariableSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VariableVisitor;
        impl<'de> Visitor<'de> for VariableVisitor {
            type Value = VariableSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a variable path, or a map with `path` and optional `name`")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<VariableSpec, E> {
                Ok(VariableSpec {
                    path: value.to_string(),
                    name: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VariableSpec, A::Error> {
                let mut path = None;
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" if path.is_none() => path = Some(map.next_value::<String>()?),
                        "name" if name.is_none() => name = Some(map.next_value::<String>()?),
                        "path" | "name" => return Err(de::Error::duplicate_field("path")),
                        other => return Err(de::Error::unknown_field(other, &["path", "name"])),
                    }
                }
                let path = path.ok_or_else(|| de::Error::missing_field("path"))?;
                Ok(VariableSpec { path, name })
            }
        }
        deserializer.deserialize_any(VariableVisitor)
    }
}

/// `filters:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FiltersSpec {
    /// all | strong | weak | [gt1l, ...]; default all.
    #[serde(default)]
    pub beams: BeamsSpec,
    #[serde(default)]
    pub night_only: bool,
    /// Scalar output columns whose fill drops the row.
    #[serde(default)]
    pub drop_fill: Vec<String>,
    /// A SQL boolean expression over the output columns (and catalog
    /// variables, read for it alone); rows it does not keep are dropped.
    #[serde(default, rename = "where")]
    pub where_sql: Option<String>,
}

/// `filters.beams`: a word or a list of beam names.
#[derive(Debug, Clone, PartialEq)]
pub enum BeamsSpec {
    Word(String),
    List(Vec<String>),
}

impl Default for BeamsSpec {
    fn default() -> Self {
        BeamsSpec::Word("all".to_string())
    }
}

impl<'de> Deserialize<'de> for BeamsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BeamsVisitor;
        impl<'de> Visitor<'de> for BeamsVisitor {
            type Value = BeamsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("all, strong, weak, or a list of beams such as [gt1l, gt2r]")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<BeamsSpec, E> {
                Ok(BeamsSpec::Word(value.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BeamsSpec, A::Error> {
                let mut beams = Vec::new();
                while let Some(beam) = seq.next_element::<String>()? {
                    beams.push(beam);
                }
                Ok(BeamsSpec::List(beams))
            }
        }
        deserializer.deserialize_any(BeamsVisitor)
    }
}

/// `source:`: exactly one of `local`, `urls`, `cmr`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub local: Option<LocalSpec>,
    pub urls: Option<Vec<String>>,
    pub cmr: Option<CmrSpec>,
}

/// `source.local`: a folder searched recursively for `*.h5`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalSpec {
    pub path: String,
}

/// `source.cmr`: NASA's catalog (see NASA.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CmrSpec {
    /// CMR provider; default NSIDC_CPRD.
    pub provider: Option<String>,
    /// Collection concept id; default: short_name ATL08, version = release, provider.
    pub collection: Option<String>,
    /// `rgt` (the notebook's track search, default) or `spatial` (CMR polygon search).
    pub tracks: Option<String>,
    /// `https` (default; works anywhere) or `s3` (AWS us-west-2 only).
    pub access: Option<String>,
    /// File holding an Earthdata Login token; else EARTHDATA_TOKEN, else ~/.netrc.
    pub token_file: Option<String>,
    /// Overrides, for mirrors and tests.
    pub cmr_url: Option<String>,
    pub credentials_url: Option<String>,
    pub s3_endpoint: Option<String>,
    pub edl_url: Option<String>,
    /// More hosts the Earthdata token may go to (`host`, `host:port` or
    /// `*.domain`), besides NASA's Earthdata/DAAC domains and the hosts of
    /// the URLs above; over https (or to loopback) only.
    pub token_hosts: Option<Vec<String>>,
}

/// `output:`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Folder, relative to the manifest; default `out/<name>`.
    pub path: Option<String>,
    /// Any of year, month, rgt, cycle, beam; default [year, month].
    #[serde(default = "default_partition_by")]
    pub partition_by: Vec<String>,
    /// Target size of a data file in MB: rows are buffered per partition
    /// across granules and a file is closed once it reaches this size. Default 256.
    pub file_mb: Option<f64>,
    /// Rows per Parquet row group. Default 131072.
    pub row_group_rows: Option<u64>,
    /// Memory in MB for rows waiting in open files, all partitions together;
    /// beyond it the largest partition writes its row group early. Default 32.
    pub buffer_mb: Option<f64>,
    /// Commit (close the open files, record the granules done in the journal)
    /// after this many granules... Default 500.
    pub checkpoint_granules: Option<u64>,
    /// ...or after this many minutes, whichever comes first. Default 10.
    pub checkpoint_minutes: Option<f64>,
    /// zstd level of the data files. Default 1.
    pub zstd_level: Option<i32>,
    /// Rows within a file: `granule` (as the granules were read, the only
    /// order built so far).
    pub order: Option<String>,
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            path: None,
            partition_by: default_partition_by(),
            file_mb: None,
            row_group_rows: None,
            buffer_mb: None,
            order: None,
            checkpoint_granules: None,
            checkpoint_minutes: None,
            zstd_level: None,
        }
    }
}

fn default_partition_by() -> Vec<String> {
    vec!["year".to_string(), "month".to_string()]
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            file: file.clone(),
            source,
        })?;
        Manifest::parse(&text, &file)
    }

    /// Parses manifest text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, ManifestError> {
        serde_saphyr::from_str::<Manifest>(text).map_err(|err| ManifestError::Syntax {
            file: file.to_string(),
            message: one_line(&err, text),
        })
    }
}

/// serde-saphyr's error as one line: `line L, column C: message (`the line`)`.
fn one_line(err: &serde_saphyr::Error, text: &str) -> String {
    let rendered = err.without_snippet().to_string();
    let mut message = rendered
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(location) = err.location() else {
        return message;
    };
    let suffix = format!(" at line {}, column {}", location.line(), location.column());
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_string();
    }
    let source_line = usize::try_from(location.line())
        .ok()
        .and_then(|line| text.lines().nth(line.saturating_sub(1)))
        .map(str::trim)
        .filter(|line| !line.is_empty());
    match source_line {
        Some(line) => format!(
            "line {}, column {}: {message} (`{line}`)",
            location.line(),
            location.column()
        ),
        None => format!(
            "line {}, column {}: {message}",
            location.line(),
            location.column()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "region: { bbox: [147, -44, 148, -43] }\nsource: { local: { path: granules } }\n";

    #[test]
    fn minimal_manifest_takes_defaults() {
        let manifest = Manifest::parse(MINIMAL, "m.yaml").unwrap();
        assert_eq!(manifest.product, "ATL08");
        assert_eq!(manifest.output.partition_by, vec!["year", "month"]);
        assert_eq!(manifest.filters.beams, BeamsSpec::Word("all".into()));
        assert!(manifest.variables.is_empty());
    }

    #[test]
    fn variables_as_paths_and_maps() {
        let text = format!(
            "{MINIMAL}variables:\n  - land_segments/canopy/h_canopy\n  - {{ path: signal_photons/ph_h, name: ph_h }}\nrelease: 6\n"
        );
        let manifest = Manifest::parse(&text, "m.yaml").unwrap();
        assert_eq!(
            manifest.variables[1],
            VariableSpec {
                path: "signal_photons/ph_h".into(),
                name: Some("ph_h".into())
            }
        );
        assert_eq!(manifest.release, Some(ReleaseSpec("006".into())));
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let text = format!("{MINIMAL}filters:\n  nite_only: true\n");
        let err = Manifest::parse(&text, "m.yaml").unwrap_err().to_string();
        assert!(err.starts_with("m.yaml: line 4"), "{err}");
        assert!(err.contains("nite_only"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_location() {
        let text = format!("{MINIMAL}filters:\n  night_only: maybe\n");
        let err = Manifest::parse(&text, "m.yaml").unwrap_err().to_string();
        assert!(err.starts_with("m.yaml: line 4"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
