//! Where granules come from: a local folder, a list of URLs, or NASA CMR.
//! Produces `GranuleRef`s; reading their bytes is `store`'s business.

pub mod cmr;

use std::path::{Path, PathBuf};

/// One granule to consider: its file name and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GranuleRef {
    /// File name as stored (with `.h5` and any `processed_` prefix).
    pub name: String,
    pub location: Location,
    /// About how many bytes the granule has, when the catalog says: a hint
    /// for display only (CMR records round it to MB or say `NA`), never the
    /// length used for reads.
    pub size_hint: Option<u64>,
}

/// Where a granule's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, key: String },
    Https(url::Url),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Location::Https(url) => write!(f, "{}", crate::store::https::redact(url)),
        }
    }
}

impl Location {
    /// Parses `s3://bucket/key`, `https://...` or `http://...`.
    pub fn parse_url(text: &str) -> Option<Location> {
        if text.starts_with("s3://") {
            let url = crate::dataset::location::S3Url::parse(text)?;
            return (!url.key.is_empty()).then(|| Location::S3 {
                bucket: url.bucket.to_string(),
                key: url.key.to_string(),
            });
        }
        let url = url::Url::parse(text).ok()?;
        matches!(url.scheme(), "https" | "http").then_some(Location::Https(url))
    }

    /// The file name at the end of the location.
    pub fn file_name(&self) -> String {
        match self {
            Location::Local(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Location::S3 { key, .. } => key.rsplit('/').next().unwrap_or_default().to_string(),
            Location::Https(url) => url
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// Whether a granule name from a catalog is safe to show and to use in a
/// path: one non-empty file name, no `..`, separators or control
/// characters, at most 255 bytes. Names come from remote metadata (CMR,
/// URLs) we do not control.
pub fn check_name(name: &str) -> Result<(), String> {
    let shown: String = name
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > 255 {
        "is longer than 255 bytes"
    } else if name == "." || name == ".." || name.contains("..") {
        "contains '..'"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(format!("unsafe granule name '{shown}': it {problem}"))
}

/// Why listing failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {message}")]
    Local { path: String, message: String },
}

/// Every `*.h5` file under `folder` (recursively, hidden entries skipped),
/// sorted by file name. A second file of the same name is left out and
/// reported in the returned warnings.
pub fn list_local(folder: &Path) -> Result<(Vec<GranuleRef>, Vec<String>), CatalogError> {
    let mut files = Vec::new();
    walk(folder, &mut files)?;
    files.sort_by(|a: &PathBuf, b: &PathBuf| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    let mut granules: Vec<GranuleRef> = Vec::with_capacity(files.len());
    let mut warnings = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(previous) = granules.last().filter(|previous| previous.name == name) {
            warnings.push(format!(
                "{}: same granule name as {}; left out",
                path.display(),
                previous.location
            ));
            continue;
        }
        granules.push(GranuleRef {
            name,
            location: Location::Local(path),
            size_hint: None,
        });
    }
    Ok((granules, warnings))
}

fn walk(folder: &Path, files: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let error = |message: String| CatalogError::Local {
        path: folder.display().to_string(),
        message,
    };
    let entries = std::fs::read_dir(folder).map_err(|err| error(err.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|err| error(err.to_string()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type =
            std::fs::metadata(&path).map_err(|err| error(format!("{}: {err}", path.display())))?;
        if file_type.is_dir() {
            walk(&path, files)?;
        } else if name.to_string_lossy().ends_with(".h5") {
            files.push(path);
        }
    }
    Ok(())
}

/// A granule given as a `file://` URL or a plain path (already resolved).
pub fn local_ref(path: PathBuf) -> GranuleRef {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    GranuleRef {
        name,
        location: Location::Local(path),
        size_hint: None,
    }
}

/// For each granule, why an older revision of it is left out, if it is:
/// names equal up to the revision (`..._006_01.h5`, `..._006_02.h5`: same
/// product, start, track, cycle, granule region and release; a
/// `processed_` prefix aside) are one granule, and only its newest
/// revision is read. The reason names the revision kept: `superseded by
/// revision 02 (ATL08_..._006_02.h5)`. Names off the convention are never
/// superseded.
pub fn superseded(granules: &[GranuleRef]) -> Vec<Option<String>> {
    use crate::granule::name::GranuleKey;
    use std::collections::HashMap;
    let parsed: Vec<Option<(GranuleKey, u64)>> = granules
        .iter()
        .map(|granule| {
            let name = crate::granule::GranuleName::parse(&granule.name)?;
            let revision: u64 = name.revision.parse().ok()?;
            Some((name.key(), revision))
        })
        .collect();
    // The newest revision of each granule, and the first name holding it.
    let mut newest: HashMap<&GranuleKey, (u64, usize)> = HashMap::new();
    for (index, entry) in parsed.iter().enumerate() {
        let Some((key, revision)) = entry else {
            continue;
        };
        let best = newest.entry(key).or_insert((*revision, index));
        let better = *revision > best.0
            || (*revision == best.0 && granules[index].name < granules[best.1].name);
        if better {
            *best = (*revision, index);
        }
    }
    parsed
        .iter()
        .map(|entry| {
            let (key, revision) = entry.as_ref()?;
            let (best, index) = newest[key];
            (*revision < best).then(|| {
                let kept = &granules[index].name;
                let shown = crate::granule::GranuleName::parse(kept)
                    .map(|name| name.revision)
                    .unwrap_or_default();
                format!("superseded by revision {shown} ({kept})")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{GranuleRef, Location, check_name, superseded};

    fn named(name: &str) -> GranuleRef {
        GranuleRef {
            name: name.to_string(),
            location: Location::Local(name.into()),
            size_hint: None,
        }
    }

    #[test]
    fn older_revisions_are_superseded_by_the_newest() {
        let names = [
            "ATL08_20230621235543_00272011_006_01.h5",
            "ATL08_20230621235543_00272011_006_03.h5",
            "processed_ATL08_20230621235543_00272011_006_02.h5",
            // Another release, track or start: another granule.
            "ATL08_20230621235543_00272011_007_01.h5",
            "ATL08_20230621235543_00272012_006_01.h5",
            "ATL08_20230621235544_00272011_006_01.h5",
            // Same revision under two names: both kept.
            "ATL08_20230622235543_00272011_006_02.h5",
            "processed_ATL08_20230622235543_00272011_006_02.h5",
            "ATL08_20230622235543_00272011_006_1.h5",
            "not_a_granule.h5",
        ];
        let granules: Vec<GranuleRef> = names.iter().map(|name| named(name)).collect();
        let reasons = superseded(&granules);
        let by_03 =
            Some("superseded by revision 03 (ATL08_20230621235543_00272011_006_03.h5)".to_string());
        let by_02 =
            Some("superseded by revision 02 (ATL08_20230622235543_00272011_006_02.h5)".to_string());
        assert_eq!(
            reasons,
            vec![
                by_03.clone(),
                None,
                by_03,
                None,
                None,
                None,
                None,
                None,
                by_02,
                None
            ]
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(check_name("ATL08_20190421213054_03750313_006_01.h5").is_ok());
        assert!(check_name("processed_ATL08_20190421213054_03750313_006_01.h5").is_ok());
        for (name, problem) in [
            ("", "is empty"),
            ("..", "'..'"),
            ("../../etc/passwd", "'..'"),
            ("a/b.h5", "separator"),
            ("a\\b.h5", "separator"),
            ("ATL08\n.h5", "control"),
            (&"x".repeat(300), "255"),
        ] {
            let message = check_name(name).unwrap_err();
            assert!(message.contains(problem), "{name:?}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
