//! The study area: GeoJSON (Polygon, MultiPolygon, Feature, FeatureCollection:
//! every feature counts) or a bbox, validated once and prepared for fast
//! point tests with a bounding-box pre-check. Pure: no I/O beyond parsing text.

use geo::algorithm::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{BoundingRect, Coord, LineString, Polygon, Rect, Validation};
use geojson::{GeoJson, GeometryValue};

/// Why a region is not usable. `origin` names the file or manifest field.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("{origin}: not valid GeoJSON: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// One polygon of the region with its bounding box.
#[derive(Debug, Clone)]
struct Part {
    polygon: Polygon<f64>,
    bounds: Rect<f64>,
    /// The polygon is its bounding box (a `bbox` region, or a GeoJSON
    /// rectangle): the strict bounds test is the whole point test.
    is_box: bool,
}

impl Part {
    fn new(polygon: Polygon<f64>, bounds: Rect<f64>) -> Part {
        let is_box = is_its_box(&polygon, bounds);
        Part {
            polygon,
            bounds,
            is_box,
        }
    }
}

/// Whether `polygon` is the rectangle `bounds`: no holes, and a ring of the
/// four corners, each once, joined by axis-parallel edges (so no diagonal).
/// The interior of such a polygon is the open box, so a point is strictly
/// inside exactly when it is strictly inside the bounds; the ring test of
/// `geo` (1.5% of the bulk benchmark's instructions, on a 3 x 3 degree box)
/// is then skipped.
fn is_its_box(polygon: &Polygon<f64>, bounds: Rect<f64>) -> bool {
    let (min, max) = (bounds.min(), bounds.max());
    let corners = [
        (min.x, min.y),
        (max.x, min.y),
        (max.x, max.y),
        (min.x, max.y),
    ];
    let ring: Vec<(f64, f64)> = polygon.exterior().coords().map(|c| (c.x, c.y)).collect();
    polygon.interiors().is_empty()
        && min.x < max.x
        && min.y < max.y
        && ring.len() == 5
        && ring[0] == ring[4]
        && corners.iter().all(|corner| ring[..4].contains(corner))
        && ring
            .windows(2)
            .all(|edge| edge[0].0 == edge[1].0 || edge[0].1 == edge[1].1)
}

/// A validated study area. A point is in the region when it lies strictly
/// inside one of its polygons (boundary excluded, holes respected), the
/// semantics of shapely's `within`.
#[derive(Debug, Clone)]
pub struct Region {
    parts: Vec<Part>,
    bounds: Rect<f64>,
}

impl Region {
    /// Parses GeoJSON text. `origin` names where it came from, for messages.
    pub fn from_geojson_str(text: &str, origin: &str) -> Result<Region, RegionError> {
        let geojson: GeoJson = text
            .parse()
            .map_err(|err: geojson::Error| RegionError::Parse {
                origin: origin.to_string(),
                message: err.to_string(),
            })?;
        Region::from_geojson(geojson, origin)
    }

    /// Builds from a parsed GeoJSON JSON value (the manifest's inline `geometry:`).
    pub fn from_json_value(value: serde_json::Value, origin: &str) -> Result<Region, RegionError> {
        let geojson: GeoJson = serde_json::from_value(value).map_err(|err| RegionError::Parse {
            origin: origin.to_string(),
            message: err.to_string(),
        })?;
        Region::from_geojson(geojson, origin)
    }

    fn from_geojson(geojson: GeoJson, origin: &str) -> Result<Region, RegionError> {
        let invalid = |message: String| RegionError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let geometries: Vec<(String, geojson::Geometry)> = match geojson {
            GeoJson::Geometry(geometry) => vec![("geometry".to_string(), geometry)],
            GeoJson::Feature(feature) => match feature.geometry {
                Some(geometry) => vec![("feature".to_string(), geometry)],
                None => return Err(invalid("the feature has no geometry".to_string())),
            },
            GeoJson::FeatureCollection(collection) => collection
                .features
                .into_iter()
                .enumerate()
                .filter_map(|(index, feature)| {
                    feature
                        .geometry
                        .map(|geometry| (format!("feature {index}"), geometry))
                })
                .collect(),
        };
        let mut polygons = Vec::new();
        for (label, geometry) in geometries {
            match geometry.value {
                GeometryValue::Polygon { coordinates } => polygons.push((label, coordinates)),
                GeometryValue::MultiPolygon { coordinates } => {
                    for (index, polygon) in coordinates.into_iter().enumerate() {
                        polygons.push((format!("{label} polygon {index}"), polygon));
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "{label} is a {}; the region must be Polygon or MultiPolygon",
                        other.type_name()
                    )));
                }
            }
        }
        if polygons.is_empty() {
            return Err(invalid("no polygon in the region".to_string()));
        }
        let mut parts = Vec::with_capacity(polygons.len());
        for (label, rings) in polygons {
            parts.push(polygon_from_rings(&rings, &label).map_err(invalid)?);
        }
        Ok(Region::from_parts(parts))
    }

    /// A longitude/latitude box `[west, south, east, north]`.
    pub fn from_bbox(bbox: [f64; 4], origin: &str) -> Result<Region, RegionError> {
        let [west, south, east, north] = bbox;
        let invalid = |message: String| RegionError::Invalid {
            origin: origin.to_string(),
            message,
        };
        if bbox.iter().any(|value| !value.is_finite()) {
            return Err(invalid("bbox values must be finite numbers".to_string()));
        }
        if !(-180.0..=180.0).contains(&west) || !(-180.0..=180.0).contains(&east) {
            return Err(invalid(format!(
                "bbox longitudes must lie in [-180, 180], got {west} and {east}"
            )));
        }
        if !(-90.0..=90.0).contains(&south) || !(-90.0..=90.0).contains(&north) {
            return Err(invalid(format!(
                "bbox latitudes must lie in [-90, 90], got {south} and {north}"
            )));
        }
        if west >= east {
            return Err(invalid(format!(
                "bbox west ({west}) must be less than east ({east}): order is [W, S, E, N]"
            )));
        }
        if south >= north {
            return Err(invalid(format!(
                "bbox south ({south}) must be less than north ({north}): order is [W, S, E, N]"
            )));
        }
        let polygon =
            Rect::new(Coord { x: west, y: south }, Coord { x: east, y: north }).to_polygon();
        let bounds = polygon
            .bounding_rect()
            .unwrap_or_else(|| Rect::new(Coord { x: west, y: south }, Coord { x: east, y: north }));
        Ok(Region::from_parts(vec![Part::new(polygon, bounds)]))
    }

    fn from_parts(parts: Vec<Part>) -> Region {
        let mut bounds = parts[0].bounds;
        for part in &parts[1..] {
            bounds = Rect::new(
                Coord {
                    x: bounds.min().x.min(part.bounds.min().x),
                    y: bounds.min().y.min(part.bounds.min().y),
                },
                Coord {
                    x: bounds.max().x.max(part.bounds.max().x),
                    y: bounds.max().y.max(part.bounds.max().y),
                },
            );
        }
        Region { parts, bounds }
    }

    /// Whether (lon, lat) lies strictly inside the region.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let bounds = self.bounds;
        if lon <= bounds.min().x
            || lon >= bounds.max().x
            || lat <= bounds.min().y
            || lat >= bounds.max().y
        {
            return false;
        }
        let coord = Coord { x: lon, y: lat };
        self.parts.iter().any(|part| {
            lon > part.bounds.min().x
                && lon < part.bounds.max().x
                && lat > part.bounds.min().y
                && lat < part.bounds.max().y
                && (part.is_box || part.polygon.coordinate_position(&coord) == CoordPos::Inside)
        })
    }

    /// The region's bounding box.
    pub fn bounds(&self) -> Rect<f64> {
        self.bounds
    }

    /// The polygons of the region.
    pub fn polygons(&self) -> impl Iterator<Item = &Polygon<f64>> {
        self.parts.iter().map(|part| &part.polygon)
    }
}

/// A validated polygon from GeoJSON rings (first the shell, then holes).
fn polygon_from_rings(rings: &[Vec<geojson::Position>], label: &str) -> Result<Part, String> {
    let mut line_strings = Vec::with_capacity(rings.len());
    if rings.is_empty() {
        return Err(format!("{label} is empty"));
    }
    for (ring_index, ring) in rings.iter().enumerate() {
        let what = if ring_index == 0 {
            format!("{label} outer ring")
        } else {
            format!("{label} hole {ring_index}")
        };
        let mut coords = Vec::with_capacity(ring.len());
        for position in ring {
            let values = position.as_slice();
            if values.len() < 2 {
                return Err(format!("{what} has a position with fewer than 2 numbers"));
            }
            let (lon, lat) = (values[0], values[1]);
            if !lon.is_finite()
                || !lat.is_finite()
                || !(-180.0..=180.0).contains(&lon)
                || !(-90.0..=90.0).contains(&lat)
            {
                return Err(format!(
                    "{what} has a position out of range: [{lon}, {lat}] (longitude, latitude in degrees)"
                ));
            }
            coords.push(Coord { x: lon, y: lat });
        }
        if coords.len() < 4 {
            return Err(format!(
                "{what} has {} positions; a ring needs at least 4",
                coords.len()
            ));
        }
        if coords.first() != coords.last() {
            return Err(format!(
                "{what} is not closed: its first and last positions differ"
            ));
        }
        line_strings.push(LineString::new(coords));
    }
    let shell = line_strings.remove(0);
    let polygon = Polygon::new(shell, line_strings);
    if let Some(problem) = polygon.validation_errors().into_iter().next() {
        return Err(format!("{label} is not a valid polygon: {problem}"));
    }
    let bounds = polygon
        .bounding_rect()
        .ok_or_else(|| format!("{label} is empty"))?;
    if bounds.width() <= 0.0 || bounds.height() <= 0.0 {
        return Err(format!("{label} has no area"));
    }
    Ok(Part::new(polygon, bounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_with_hole() -> Region {
        Region::from_geojson_str(
            r#"{"type":"MultiPolygon","coordinates":[
                [[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]],
                [[[20,0],[30,0],[30,10],[20,10],[20,0]]]]}"#,
            "test",
        )
        .unwrap()
    }

    /// The box shortcut gives `geo`'s answer for every point: inside,
    /// on edges and corners, just off them, outside, and not finite.
    #[test]
    fn a_box_region_contains_what_its_polygon_contains() {
        let boxes = [
            Region::from_bbox([145.868, -44.643, 148.868, -41.643], "bbox").unwrap(),
            Region::from_geojson_str(
                r#"{"type":"Polygon","coordinates":[[[1,2],[1,5],[4,5],[4,2],[1,2]]]}"#,
                "geojson",
            )
            .unwrap(),
        ];
        for region in &boxes {
            assert!(region.parts.iter().all(|part| part.is_box));
            let bounds = region.bounds();
            let (min, max) = (bounds.min(), bounds.max());
            let mut xs = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -180.0, 180.0];
            let mut ys = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -90.0, 90.0];
            let near = |edge: f64| {
                [
                    edge,
                    edge.next_down(),
                    edge.next_up(),
                    edge - 0.5,
                    edge + 0.5,
                ]
            };
            xs.extend(near(min.x).into_iter().chain(near(max.x)));
            ys.extend(near(min.y).into_iter().chain(near(max.y)));
            xs.push((min.x + max.x) / 2.0);
            ys.push((min.y + max.y) / 2.0);
            for &x in &xs {
                for &y in &ys {
                    let coord = Coord { x, y };
                    let by_geo = region
                        .polygons()
                        .any(|polygon| polygon.coordinate_position(&coord) == CoordPos::Inside);
                    assert_eq!(region.contains(x, y), by_geo, "({x}, {y})");
                }
            }
        }
        // Not boxes: a hole, a triangle, and a box's ring with an extra
        // vertex on an edge (its answer still comes from `geo`).
        let others = [
            square_with_hole(),
            Region::from_geojson_str(
                r#"{"type":"Polygon","coordinates":[[[0,0],[4,0],[0,4],[0,0]]]}"#,
                "triangle",
            )
            .unwrap(),
            Region::from_geojson_str(
                r#"{"type":"Polygon","coordinates":[[[0,0],[2,0],[4,0],[4,4],[0,4],[0,0]]]}"#,
                "six",
            )
            .unwrap(),
        ];
        for region in &others {
            assert!(!region.parts[0].is_box);
        }
        assert!(!others[1].contains(3.0, 3.0));
        assert!(others[1].contains(1.0, 1.0));
    }

    #[test]
    fn within_excludes_boundary_and_holes() {
        let region = square_with_hole();
        assert!(region.contains(1.0, 1.0));
        assert!(!region.contains(5.0, 5.0), "inside the hole");
        assert!(!region.contains(0.0, 5.0), "on the boundary");
        assert!(!region.contains(4.0, 5.0), "on the hole's boundary");
        assert!(region.contains(25.0, 5.0), "second polygon");
        assert!(!region.contains(15.0, 5.0));
    }

    #[test]
    fn rejects_bad_polygons() {
        let cases = [
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#,
                "not closed",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}"#,
                "not a valid polygon",
            ),
            (r#"{"type":"Polygon","coordinates":[]}"#, "empty"),
            (
                r#"{"type":"FeatureCollection","features":[]}"#,
                "no polygon",
            ),
            (r#"{"type":"Point","coordinates":[1,2]}"#, "Point"),
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#,
                "at least 4",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[200,0],[1,1],[0,0]]]}"#,
                "out of range",
            ),
            ("{not json", "not valid GeoJSON"),
        ];
        for (text, expected) in cases {
            let err = Region::from_geojson_str(text, "poly.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.starts_with("poly.json"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn bbox_checks_order() {
        let err = Region::from_bbox([10.0, 0.0, 5.0, 1.0], "region.bbox")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("west (10) must be less than east (5)"),
            "{err}"
        );
        let region = Region::from_bbox([0.0, 0.0, 1.0, 1.0], "region.bbox").unwrap();
        assert!(region.contains(0.5, 0.5));
        assert!(!region.contains(1.0, 0.5));
    }
}
