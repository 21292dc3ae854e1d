//! Ground-track selection, the notebook's method: the reference ground tracks
//! (RGTs) whose line intersects the region buffered by `track_buffer_deg`
//! (square caps), from the built-in model or an `orbits:` GeoJSON file; and
//! the granule regions (latitude bands) the buffered region touches.

use std::collections::BTreeSet;
use std::path::Path;

use geo::algorithm::buffer::{Buffer, BufferStyle, LineCap};
use geo::{BoundingRect, Coord, Intersects, LineString, MultiLineString, MultiPolygon, Rect};
use rayon::prelude::*;

use crate::orbit;
use crate::region::Region;

/// Where RGT lines come from.
#[derive(Debug, Clone)]
pub enum TrackLines {
    /// The built-in circular-orbit model.
    Model,
    /// Lines read from a GeoJSON file: (rgt, line parts).
    File(Vec<(u16, MultiLineString<f64>)>),
}

/// The selected RGTs and granule regions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackSelection {
    pub rgts: BTreeSet<u16>,
    pub regions: BTreeSet<u8>,
}

impl TrackSelection {
    /// Why a granule of `rgt` and granule region `region` is left out, if it is.
    pub fn excludes(&self, rgt: u16, region: u8) -> Option<String> {
        if !self.rgts.contains(&rgt) {
            return Some(format!("RGT {rgt:04} does not cross the buffered region"));
        }
        if !self.regions.contains(&region) {
            return Some(format!(
                "granule region {region:02} does not touch the buffered region"
            ));
        }
        None
    }
}

/// Reads RGT lines in the notebook's format: a FeatureCollection of
/// (Multi)LineStrings with an `orbit` property ("1".."1387", or a number).
pub fn load_orbits(path: &Path) -> Result<Vec<(u16, MultiLineString<f64>)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
    let document: geojson::GeoJson = text
        .parse()
        .map_err(|err| format!("{}: not valid GeoJSON: {err}", path.display()))?;
    let geojson::GeoJson::FeatureCollection(collection) = document else {
        return Err(format!(
            "{}: expected a FeatureCollection of RGT lines",
            path.display()
        ));
    };
    let mut tracks = Vec::with_capacity(collection.features.len());
    for (index, feature) in collection.features.iter().enumerate() {
        let orbit = feature.property("orbit").ok_or_else(|| {
            format!(
                "{}: feature {index} has no `orbit` property",
                path.display()
            )
        })?;
        let rgt = match orbit {
            serde_json::Value::String(text) => text.trim().parse::<u16>().ok(),
            serde_json::Value::Number(number) => {
                number.as_u64().and_then(|n| u16::try_from(n).ok())
            }
            _ => None,
        }
        .filter(|rgt| (1..=orbit::N_RGTS).contains(rgt))
        .ok_or_else(|| {
            format!(
                "{}: feature {index}: `orbit` {orbit} is not an RGT 1-1387",
                path.display()
            )
        })?;
        let geometry = feature
            .geometry
            .as_ref()
            .ok_or_else(|| format!("{}: feature {index} has no geometry", path.display()))?;
        let lines: Vec<LineString<f64>> = match &geometry.value {
            geojson::GeometryValue::LineString { coordinates } => vec![line_of(coordinates)],
            geojson::GeometryValue::MultiLineString { coordinates } => {
                coordinates.iter().map(|line| line_of(line)).collect()
            }
            other => {
                return Err(format!(
                    "{}: feature {index} is a {}, expected lines",
                    path.display(),
                    other.type_name()
                ));
            }
        };
        tracks.push((rgt, MultiLineString::new(lines)));
    }
    Ok(tracks)
}

fn line_of(positions: &[geojson::Position]) -> LineString<f64> {
    LineString::new(
        positions
            .iter()
            .filter_map(|p| {
                let values = p.as_slice();
                (values.len() >= 2).then(|| Coord {
                    x: values[0],
                    y: values[1],
                })
            })
            .collect(),
    )
}

/// The region buffered by `buffer_deg` degrees (square caps, round joins,
/// as shapely's `buffer(d, cap_style="square")`).
pub fn buffered(region: &Region, buffer_deg: f64) -> MultiPolygon<f64> {
    let polygons: Vec<_> = region.polygons().cloned().collect();
    let multi = MultiPolygon::new(polygons);
    if buffer_deg <= 0.0 {
        return multi;
    }
    multi.buffer_with_style(BufferStyle::new(buffer_deg).line_cap(LineCap::Square))
}

/// Tracks passing this close to the region (km) are always selected: 10 km
/// of off-nadir pointing over land (ATL08.md) plus 3 km of model error.
pub const MIN_TRACK_DISTANCE_KM: f64 = 13.0;

/// The buffer actually used, degrees: `buffer_deg`, widened where degrees of
/// longitude are short (high latitudes) so it spans at least
/// `MIN_TRACK_DISTANCE_KM` east-west.
pub fn effective_buffer(region: &Region, buffer_deg: f64) -> f64 {
    let bounds = region.bounds();
    let extreme = bounds.min().y.abs().max(bounds.max().y.abs()).min(89.0);
    let km_per_degree = 111.32 * extreme.to_radians().cos().max(0.02);
    buffer_deg.max(MIN_TRACK_DISTANCE_KM / km_per_degree)
}

/// Selects RGTs and granule regions for `region`.
pub fn select(region: &Region, buffer_deg: f64, lines: &TrackLines) -> TrackSelection {
    let area = buffered(region, effective_buffer(region, buffer_deg));
    let Some(bounds) = area.bounding_rect() else {
        return TrackSelection::default();
    };
    let rgts = match lines {
        // Tracks are independent: tested on every core.
        TrackLines::Model => {
            let steps = coarse_steps(bounds);
            (1..=orbit::N_RGTS)
                .into_par_iter()
                .filter(|&rgt| model_crosses(rgt, &area, bounds, &steps))
                .collect()
        }
        TrackLines::File(tracks) => tracks
            .iter()
            .filter(|(_, line)| line.intersects(&area))
            .map(|(rgt, _)| *rgt)
            .collect(),
    };
    let (south, north) = (bounds.min().y, bounds.max().y);
    let regions = (1..=14u8)
        .filter(|&region| {
            orbit::region_band(region)
                .is_some_and(|(band_south, band_north)| band_south <= north && south <= band_north)
        })
        .collect();
    TrackSelection { rgts, regions }
}

/// Stretches of the model orbit: 629 steps of 0.01 rad (about 64 km).
const COARSE: usize = 629;
/// Degrees added around a coarse stretch's box before it is ruled out.
const MARGIN: f64 = 0.2;

fn coarse_step() -> f64 {
    std::f64::consts::TAU / COARSE as f64
}

/// The coarse stretches (1..=COARSE, ending at `k` steps from the node)
/// whose latitudes, with the margin, meet those of `bounds`. A track's
/// latitude depends on the argument of latitude alone, not on the RGT, so
/// this is worked out once for all 1387 tracks; for a park, a few
/// stretches out of 629.
fn coarse_steps(bounds: Rect<f64>) -> Vec<usize> {
    let latitude = |k: usize| orbit::track_point(1, coarse_step() * k as f64).1;
    (1..=COARSE)
        .filter(|&k| {
            let (a, b) = (latitude(k - 1), latitude(k));
            a.min(b) - MARGIN <= bounds.max().y && a.max(b) + MARGIN >= bounds.min().y
        })
        .collect()
}

/// Whether the model track of `rgt` meets `area`: of the coarse stretches
/// in `steps`, those whose box meets the area's box are tested as 1 km
/// segments.
fn model_crosses(rgt: u16, area: &MultiPolygon<f64>, bounds: Rect<f64>, steps: &[usize]) -> bool {
    const FINE: usize = 64;
    let step = coarse_step();
    for &k in steps {
        let u_end = step * k as f64;
        let previous = orbit::track_point(rgt, step * (k - 1) as f64);
        let next = orbit::track_point(rgt, u_end);
        let (a, b) = continuous(previous, next);
        let lon_low = a.0.min(b.0) - MARGIN;
        let lon_high = a.0.max(b.0) + MARGIN;
        for shift in [0.0, 360.0, -360.0] {
            if lon_low + shift > bounds.max().x || lon_high + shift < bounds.min().x {
                continue;
            }
            let u_start = u_end - step;
            let mut points = Vec::with_capacity(FINE + 1);
            let mut last = orbit::track_point(rgt, u_start);
            points.push(Coord {
                x: last.0 + shift,
                y: last.1,
            });
            for j in 1..=FINE {
                let point = orbit::track_point(rgt, u_start + step * j as f64 / FINE as f64);
                let (_, point) = continuous(last, point);
                points.push(Coord {
                    x: point.0 + shift,
                    y: point.1,
                });
                last = point;
            }
            if LineString::new(points).intersects(area) {
                return true;
            }
        }
    }
    false
}

/// `b` moved by 360 degrees of longitude if that brings it next to `a`.
fn continuous(a: (f64, f64), b: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let delta = b.0 - a.0;
    if delta > 180.0 {
        (a, (b.0 - 360.0, b.1))
    } else if delta < -180.0 {
        (a, (b.0 + 360.0, b.1))
    } else {
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook_polygon() -> Region {
        Region::from_geojson_str(
            r#"{"type":"Polygon","coordinates":[[[147.36292814819225,-43.13877567220346],[147.37430514872108,-43.138230401452724],[147.37434935986303,-43.14713157803227],[147.36332604846982,-43.14788316744545],[147.36292814819225,-43.13877567220346]]]}"#,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn notebook_polygon_selects_nearby_tracks_in_southern_bands() {
        let selection = select(&notebook_polygon(), 0.3, &TrackLines::Model);
        assert!(
            (4..=12).contains(&selection.rgts.len()),
            "{:?}",
            selection.rgts
        );
        assert_eq!(selection.regions, BTreeSet::from([9, 13]));
        // Every selected model track passes within the buffer (0.3 deg ~ 33 km).
        for &rgt in &selection.rgts {
            let nearest = (0..20_000)
                .map(|k| orbit::track_point(rgt, std::f64::consts::TAU * k as f64 / 20_000.0))
                .map(|(lon, lat)| ((lon - 147.368) * 0.73).hypot(lat + 43.143))
                .fold(f64::MAX, f64::min);
            assert!(nearest < 0.45, "rgt {rgt}: {nearest}");
        }
    }

    #[test]
    fn excludes_explains_why() {
        let selection = TrackSelection {
            rgts: BTreeSet::from([5]),
            regions: BTreeSet::from([9]),
        };
        assert_eq!(selection.excludes(5, 9), None);
        assert_eq!(
            selection.excludes(6, 9).unwrap(),
            "RGT 0006 does not cross the buffered region"
        );
        assert_eq!(
            selection.excludes(5, 13).unwrap(),
            "granule region 13 does not touch the buffered region"
        );
    }
}
