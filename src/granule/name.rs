//! ATL08 granule file names: `[processed_]ATL08_YYYYMMDDhhmmss_ttttccss_rrr_vv.h5`.

use chrono::{DateTime, NaiveDateTime, Utc};

/// What a conventional granule file name says about the granule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GranuleName {
    /// Product short name, e.g. `ATL08`.
    pub product: String,
    /// Start of the granule (UTC).
    pub start: DateTime<Utc>,
    pub rgt: u16,
    pub cycle: u8,
    /// Granule region 1-14.
    pub region: u8,
    /// Release, e.g. `006`.
    pub release: String,
    /// Revision, e.g. `01`.
    pub revision: String,
}

/// What a name says of a granule whatever its revision: product, start,
/// track, cycle, granule region and release. Two names with the same key
/// are revisions of one granule.
pub type GranuleKey = (String, i64, u16, u8, u8, String);

impl GranuleName {
    /// The granule this name is a revision of.
    pub fn key(&self) -> GranuleKey {
        (
            self.product.clone(),
            self.start.timestamp(),
            self.rgt,
            self.cycle,
            self.region,
            self.release.clone(),
        )
    }

    /// Parses a file name (no folders). `None` when it does not follow the
    /// convention; such files are judged by their content.
    pub fn parse(file_name: &str) -> Option<GranuleName> {
        let stem = file_name.strip_suffix(".h5")?;
        let stem = stem.strip_prefix("processed_").unwrap_or(stem);
        let mut parts = stem.split('_');
        let product = parts.next()?;
        let stamp = parts.next()?;
        let track = parts.next()?;
        let release = parts.next()?;
        let revision = parts.next()?;
        if parts.next().is_some()
            || !product.starts_with("ATL")
            || stamp.len() != 14
            || track.len() != 8
            || release.len() != 3
            || revision.is_empty()
            || !all_digits(stamp)
            || !all_digits(track)
            || !all_digits(release)
            || !all_digits(revision)
        {
            return None;
        }
        let start = NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S")
            .ok()?
            .and_utc();
        let rgt: u16 = track[0..4].parse().ok()?;
        let cycle: u8 = track[4..6].parse().ok()?;
        let region: u8 = track[6..8].parse().ok()?;
        if !(1..=crate::orbit::N_RGTS).contains(&rgt) || !(1..=14).contains(&region) {
            return None;
        }
        Some(GranuleName {
            product: product.to_string(),
            start,
            rgt,
            cycle,
            region,
            release: release.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The conventional file name for these fields (without `processed_`).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{:04}{:02}{:02}_{}_{}.h5",
            self.product,
            self.start.format("%Y%m%d%H%M%S"),
            self.rgt,
            self.cycle,
            self.region,
            self.release,
            self.revision
        )
    }
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_nsidc_subset_name() {
        let name = GranuleName::parse("processed_ATL08_20200821122613_08730802_004_01.h5").unwrap();
        assert_eq!((name.rgt, name.cycle, name.region), (873, 8, 2));
        assert_eq!(name.release, "004");
        assert_eq!(name.start.to_rfc3339(), "2020-08-21T12:26:13+00:00");
        assert_eq!(name.file_name(), "ATL08_20200821122613_08730802_004_01.h5");
    }

    #[test]
    fn rejects_names_off_the_convention() {
        for bad in [
            "ATL08_release006_clip_gt1r.h5",
            "ATL08_20200821122613_08730802_004_01.nc",
            "ATL08_20200821122613_08730815_004_01.h5",
            "ATL08_20201321122613_08730802_004_01.h5",
            "ATL08_20200821122613_00000802_004_01.h5",
        ] {
            assert_eq!(GranuleName::parse(bad), None, "{bad}");
        }
    }
}
