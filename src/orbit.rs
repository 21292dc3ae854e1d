//! The built-in model of ICESat-2's 1387 reference ground tracks (RGTs) and of
//! the 14 granule regions (latitude bands) each orbit is cut into.
//!
//! A circular orbit at 92 deg inclination that repeats exactly after 1387
//! revolutions in 91 days; the ascending-node longitude of RGT 1 and the
//! geodetic-latitude conversion come from `ATL08.md`. The model lies within
//! 3 km of NASA's published tracks (tested against `orbits.json`).

use chrono::{DateTime, Duration, TimeZone, Utc};

/// Number of reference ground tracks in one repeat cycle.
pub const N_RGTS: u16 = 1387;
/// Days in one repeat cycle.
pub const DAYS_PER_CYCLE: f64 = 91.0;
/// Nodal period in seconds: 91 days / 1387 revolutions.
pub const NODAL_PERIOD_S: f64 = DAYS_PER_CYCLE * 86_400.0 / N_RGTS as f64;

const INCLINATION_DEG: f64 = 92.0;
/// Ascending-node longitude of RGT 1, degrees.
const NODE_RGT1_DEG: f64 = -0.1318;
/// First eccentricity squared of WGS84.
const WGS84_E2: f64 = 0.006_694_379_990_14;
/// Earth turns this fraction of a revolution (relative to the orbit plane)
/// during one nodal period.
const EARTH_TURN_PER_REV: f64 = DAYS_PER_CYCLE / N_RGTS as f64;

/// Longitude and geodetic latitude, degrees, of RGT `rgt` at argument of
/// latitude `u` (radians, 0 at the ascending node). Longitude in [-180, 180).
pub fn track_point(rgt: u16, u: f64) -> (f64, f64) {
    let inclination = INCLINATION_DEG.to_radians();
    let node = (NODE_RGT1_DEG - f64::from(rgt.saturating_sub(1)) * 360.0 * EARTH_TURN_PER_REV)
        .to_radians();
    let geocentric_lat = (inclination.sin() * u.sin()).asin();
    let geodetic_lat = (geocentric_lat.tan() / (1.0 - WGS84_E2)).atan();
    let lon = node + (inclination.cos() * u.sin()).atan2(u.cos()) - EARTH_TURN_PER_REV * u;
    (wrap_lon(lon.to_degrees()), geodetic_lat.to_degrees())
}

/// The whole track of one RGT as `n_points + 1` points from node to node.
pub fn track_line(rgt: u16, n_points: usize) -> Vec<(f64, f64)> {
    (0..=n_points)
        .map(|k| track_point(rgt, std::f64::consts::TAU * k as f64 / n_points as f64))
        .collect()
}

/// Wraps a longitude in degrees into [-180, 180).
pub fn wrap_lon(lon: f64) -> f64 {
    let wrapped = (lon + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped >= 180.0 {
        wrapped - 360.0
    } else {
        wrapped
    }
}

/// The granule region (1-14) a point of the orbit belongs to, from its
/// geodetic latitude and whether the orbit is ascending there.
///
/// Bands as in `ATL08.md`: 01 0-27N, 02 27-59.5N, 03 59.5-80N ascending,
/// 04 >80N, 05 80-59.5N, 06 59.5-27N, 07 27-0N, 08 0-27S, 09 27-50S,
/// 10 50-79S descending, 11 <79S, 12 79-50S, 13 50-27S, 14 27S-0 ascending.
pub fn granule_region(lat: f64, ascending: bool) -> u8 {
    match (ascending, lat >= 0.0) {
        (true, true) => match lat {
            l if l < 27.0 => 1,
            l if l < 59.5 => 2,
            l if l < 80.0 => 3,
            _ => 4,
        },
        (false, true) => match lat {
            l if l >= 80.0 => 4,
            l if l >= 59.5 => 5,
            l if l >= 27.0 => 6,
            _ => 7,
        },
        (false, false) => match lat {
            l if l > -27.0 => 8,
            l if l > -50.0 => 9,
            l if l > -79.0 => 10,
            _ => 11,
        },
        (true, false) => match lat {
            l if l <= -79.0 => 11,
            l if l <= -50.0 => 12,
            l if l <= -27.0 => 13,
            _ => 14,
        },
    }
}

/// The latitude band `[south, north]` of a granule region, degrees.
pub fn region_band(region: u8) -> Option<(f64, f64)> {
    Some(match region {
        1 | 7 => (0.0, 27.0),
        2 | 6 => (27.0, 59.5),
        3 | 5 => (59.5, 80.0),
        4 => (80.0, 90.0),
        8 | 14 => (-27.0, 0.0),
        9 | 13 => (-50.0, -27.0),
        10 | 12 => (-79.0, -50.0),
        11 => (-90.0, -79.0),
        _ => return None,
    })
}

/// Whether the orbit is ascending at argument of latitude `u` (radians).
pub fn is_ascending(u: f64) -> bool {
    u.cos() > 0.0
}

/// The granule region at argument of latitude `u` (radians).
pub fn region_at(rgt: u16, u: f64) -> u8 {
    let (_, lat) = track_point(rgt, u);
    granule_region(lat, is_ascending(u))
}

/// The range of arguments of latitude `[u_start, u_end)` (radians, within
/// [0, 2 pi]) that a granule region spans. Region 4 and 11 straddle a pole.
pub fn region_u_range(region: u8) -> Option<(f64, f64)> {
    let (south, north) = region_band(region)?;
    let u_of = |lat: f64| {
        let inclination = INCLINATION_DEG.to_radians();
        let geocentric = ((1.0 - WGS84_E2) * lat.to_radians().tan()).atan();
        (geocentric.sin() / inclination.sin())
            .clamp(-1.0, 1.0)
            .asin()
    };
    let pi = std::f64::consts::PI;
    Some(match region {
        1..=3 => (u_of(south), u_of(north)),
        4 => (u_of(80.0), pi - u_of(80.0)),
        5..=7 => (pi - u_of(north), pi - u_of(south)),
        8..=10 => (pi - u_of(north), pi - u_of(south)),
        11 => (pi - u_of(-79.0), 2.0 * pi + u_of(-79.0)),
        12..=14 => (2.0 * pi + u_of(south), 2.0 * pi + u_of(north)),
        _ => return None,
    })
}

/// Start of cycle 1, RGT 1 (ascending node) in the model. Fitted to a real
/// release-004 granule's name; real cycles drift from it by up to a few days,
/// so it only dates synthetic granules.
pub fn model_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2018, 9, 27, 7, 15, 0)
        .single()
        .unwrap_or_default()
}

/// Model time at which RGT `rgt` of `cycle` passes argument of latitude `u`.
pub fn model_time(rgt: u16, cycle: u8, u: f64) -> DateTime<Utc> {
    let seconds = f64::from(cycle.saturating_sub(1)) * DAYS_PER_CYCLE * 86_400.0
        + f64::from(rgt.saturating_sub(1)) * NODAL_PERIOD_S
        + u / std::f64::consts::TAU * NODAL_PERIOD_S;
    model_epoch() + Duration::milliseconds((seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgt1_starts_at_its_node_and_heads_north() {
        let (lon, lat) = track_point(1, 0.0);
        assert!((lon - NODE_RGT1_DEG).abs() < 1e-9, "{lon}");
        assert!(lat.abs() < 1e-9);
        let (_, lat_later) = track_point(1, 0.1);
        assert!(lat_later > 0.0);
    }

    #[test]
    fn regions_follow_the_orbit() {
        let regions: Vec<u8> = (0..1400)
            .map(|k| region_at(100, std::f64::consts::TAU * (k as f64 + 0.5) / 1400.0))
            .collect();
        let mut seen = regions.clone();
        seen.dedup();
        assert_eq!(seen, (1..=14).collect::<Vec<u8>>());
    }

    #[test]
    fn region_u_ranges_tile_the_orbit() {
        let mut end_prev = region_u_range(1).unwrap().0;
        assert!(end_prev.abs() < 1e-12);
        for region in 1..=14 {
            let (start, end) = region_u_range(region).unwrap();
            assert!((start - end_prev).abs() < 1e-9, "region {region}");
            assert!(end > start);
            let mid = (start + end) / 2.0;
            assert_eq!(region_at(7, mid), region);
            end_prev = end;
        }
        assert!((end_prev - std::f64::consts::TAU).abs() < 1e-9);
    }

    #[test]
    fn model_dates_the_real_release_004_granule() {
        // processed_ATL08_20200821122613_08730802_004_01.h5: RGT 873, cycle 8, region 2.
        let (u_start, _) = region_u_range(2).unwrap();
        let start = model_time(873, 8, u_start);
        let real = Utc.with_ymd_and_hms(2020, 8, 21, 12, 26, 13).unwrap();
        assert!((start - real).num_seconds().abs() < 120, "{start}");
    }
}
