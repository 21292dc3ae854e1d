//! What a granule says of itself: its track, cycle, region, orientation
//! and time span (orbit_info and ancillary_data, else its name), and each
//! beam's strength and spot.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::h5::{Hdf5Source, Node, PlannedRead};
use super::name::GranuleName;

use super::{BEAMS, GranuleError, META_PATHS};

/// Strong or weak, from the beam group's attributes or `sc_orient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Strong,
    Weak,
    Unknown,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Strong => "strong",
            Strength::Weak => "weak",
            Strength::Unknown => "unknown",
        }
    }
}

/// A beam group's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeamInfo {
    pub name: &'static str,
    pub strength: Strength,
    pub spot: Option<u8>,
}

/// Granule-level facts: from orbit_info and ancillary_data, else the file name.
#[derive(Debug, Clone, PartialEq)]
pub struct GranuleMeta {
    pub rgt: u16,
    pub cycle: u8,
    /// Granule region 1-14; 0 when neither the name nor the file tells.
    pub region: u8,
    pub sc_orient: Option<i64>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Reads granule-level facts. `file_name` is the granule's file name as stored.
pub fn granule_meta(source: &dyn Hdf5Source, file_name: &str) -> Result<GranuleMeta, GranuleError> {
    let whole: Vec<PlannedRead> = META_PATHS
        .iter()
        .map(|path| PlannedRead {
            path: path.to_string(),
            runs: None,
        })
        .collect();
    source.prepare(&whole)?;
    let name = GranuleName::parse(file_name);
    let rgt = first_number(source, "/orbit_info/rgt")?
        .map(|value| value as u16)
        .or(name.as_ref().map(|name| name.rgt))
        .ok_or_else(|| {
            GranuleError::Invalid(
                "no orbit_info/rgt, and the file name does not give the RGT".into(),
            )
        })?;
    let cycle = first_number(source, "/orbit_info/cycle_number")?
        .map(|value| value as u8)
        .or(name.as_ref().map(|name| name.cycle))
        .ok_or_else(|| {
            GranuleError::Invalid(
                "no orbit_info/cycle_number, and the file name does not give the cycle".into(),
            )
        })?;
    let region = match name.as_ref() {
        Some(name) => name.region,
        None => match first_number(source, "/ancillary_data/start_region")? {
            Some(value) => value as u8,
            None => region_from_latitudes(source)?.unwrap_or(0),
        },
    };
    let sc_orient = first_number(source, "/orbit_info/sc_orient")?.map(|value| value as i64);
    let start = utc_text(source, "/ancillary_data/data_start_utc")?
        .or(name.as_ref().map(|name| name.start));
    let end = utc_text(source, "/ancillary_data/data_end_utc")?.or(name
        .as_ref()
        .map(|name| name.start + chrono::Duration::seconds(600)));
    Ok(GranuleMeta {
        rgt,
        cycle,
        region,
        sc_orient,
        start,
        end,
    })
}

/// The granule region of the first beam's segments: the latitude band of
/// their middle, ascending when latitude grows along the track.
fn region_from_latitudes(source: &dyn Hdf5Source) -> Result<Option<u8>, GranuleError> {
    for beam in BEAMS {
        let path = format!("/{beam}/land_segments/latitude");
        if source.node(&path)? != Node::Dataset {
            continue;
        }
        let n = source.dataset(&path)?.n_rows();
        if n == 0 {
            continue;
        }
        let ends = source.read_runs(&path, &[0..1, n - 1..n])?;
        let (Some(first), Some(last)) = (ends.get_f64(0), ends.get_f64(1)) else {
            continue;
        };
        return Ok(Some(crate::orbit::granule_region(
            (first + last) / 2.0,
            last >= first,
        )));
    }
    Ok(None)
}

/// The first value of a numeric dataset, if present.
fn first_number(source: &dyn Hdf5Source, path: &str) -> Result<Option<f64>, GranuleError> {
    if source.node(path)? != Node::Dataset {
        return Ok(None);
    }
    let info = source.dataset(path)?;
    if info.dtype.is_none() || info.shape.iter().product::<u64>() == 0 {
        return Ok(None);
    }
    Ok(source.read_runs(path, &[0..1])?.get_f64(0))
}

/// A UTC instant stored as text (`2020-08-21T12:26:13.123456Z`), if present and parseable.
fn utc_text(source: &dyn Hdf5Source, path: &str) -> Result<Option<DateTime<Utc>>, GranuleError> {
    if source.node(path)? != Node::Dataset {
        return Ok(None);
    }
    let Ok(strings) = source.read_strings(path) else {
        return Ok(None);
    };
    Ok(strings.first().and_then(|text| parse_utc(text)))
}

fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim().trim_end_matches('\0');
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|naive| naive.and_utc())
        })
}

/// A beam's strength as its group's `atlas_beam_type` attribute says, when
/// it says `strong` or `weak`.
pub(super) fn attribute_strength(
    source: &dyn Hdf5Source,
    beam: &str,
) -> Result<Option<Strength>, GranuleError> {
    let text = source.attr_text(&format!("/{beam}"), "atlas_beam_type")?;
    Ok(
        match text.map(|text| text.to_ascii_lowercase()).as_deref() {
            Some("strong") => Some(Strength::Strong),
            Some("weak") => Some(Strength::Weak),
            _ => None,
        },
    )
}

/// The beams present in the file, with strength and spot.
pub fn beams(source: &dyn Hdf5Source, meta: &GranuleMeta) -> Result<Vec<BeamInfo>, GranuleError> {
    let mut found = Vec::new();
    for name in BEAMS {
        let path = format!("/{name}");
        if source.node(&path)? != Node::Group {
            continue;
        }
        let strength = attribute_strength(source, name)?
            .unwrap_or_else(|| strength_from_orientation(name, meta.sc_orient));
        let spot = source
            .attr_text(&path, "atlas_spot_number")?
            .and_then(|text| text.trim().parse::<f64>().ok())
            .map(|spot| spot as u8)
            .filter(|spot| (1..=6).contains(spot))
            .or_else(|| spot_from_orientation(name, meta.sc_orient));
        found.push(BeamInfo {
            name,
            strength,
            spot,
        });
    }
    Ok(found)
}

fn strength_from_orientation(beam: &str, sc_orient: Option<i64>) -> Strength {
    let left = beam.ends_with('l');
    match sc_orient {
        Some(0) if left => Strength::Strong,
        Some(0) => Strength::Weak,
        Some(1) if left => Strength::Weak,
        Some(1) => Strength::Strong,
        _ => Strength::Unknown,
    }
}

fn spot_from_orientation(beam: &str, sc_orient: Option<i64>) -> Option<u8> {
    let index = BEAMS.iter().position(|candidate| *candidate == beam)? as u8;
    match sc_orient {
        // Backward: gt1l 1, gt1r 2, ..., gt3r 6.
        Some(0) => Some(index + 1),
        // Forward: gt1l 6, gt1r 5, ..., gt3r 1.
        Some(1) => Some(6 - index),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::granule::{ATLAS_EPOCH_UNIX_S, unix_micros};

    #[test]
    fn orientation_gives_strength_and_spot() {
        assert_eq!(strength_from_orientation("gt1l", Some(0)), Strength::Strong);
        assert_eq!(strength_from_orientation("gt1r", Some(1)), Strength::Strong);
        assert_eq!(
            strength_from_orientation("gt2l", Some(2)),
            Strength::Unknown
        );
        assert_eq!(spot_from_orientation("gt1r", Some(1)), Some(5));
        assert_eq!(spot_from_orientation("gt3l", Some(1)), Some(2));
        assert_eq!(spot_from_orientation("gt2l", Some(0)), Some(3));
    }

    #[test]
    fn times_round_to_the_microsecond() {
        assert_eq!(unix_micros(0.0), ATLAS_EPOCH_UNIX_S * 1_000_000);
        assert_eq!(
            unix_micros(1.0000004),
            ATLAS_EPOCH_UNIX_S * 1_000_000 + 1_000_000
        );
        assert_eq!(
            unix_micros(40_900_673.401_504_5),
            (ATLAS_EPOCH_UNIX_S + 40_900_673) * 1_000_000 + 401_505
        );
        assert_eq!(unix_micros(-0.25), ATLAS_EPOCH_UNIX_S * 1_000_000 - 250_000);
    }

    #[test]
    fn parses_ancillary_times() {
        assert_eq!(
            parse_utc("2020-08-21T12:26:13.123456Z")
                .unwrap()
                .timestamp_micros()
                % 1_000_000,
            123_456
        );
        assert!(parse_utc("2020-08-21T12:26:13Z").is_some());
    }
}
