//! The built-in ground-track model against NASA's tracks.

use icesat2::orbit;

use super::util;

/// Great-circle distance in km.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lon1, lat1) = (a.0.to_radians(), a.1.to_radians());
    let (lon2, lat2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// Distance (km) from `point` to the model track of `rgt`: scans around the
/// arguments of latitude where the model reaches the point's latitude
/// (ascending and descending) and around both poles, then refines.
fn distance_to_model(rgt: u16, point: (f64, f64)) -> f64 {
    let pi = std::f64::consts::PI;
    let ratio = (point.1.to_radians().sin() / 92f64.to_radians().sin()).clamp(-1.0, 1.0);
    let s = ratio.asin();
    let mut best_u = 0.0;
    let mut best = f64::MAX;
    let tau = std::f64::consts::TAU;
    for center in [s.rem_euclid(tau), pi - s, pi / 2.0, 1.5 * pi] {
        for k in -100..=100 {
            let u = center + 0.0005 * f64::from(k);
            let d = haversine_km(orbit::track_point(rgt, u), point);
            if d < best {
                best = d;
                best_u = u;
            }
        }
    }
    let mut step = 0.0005;
    for _ in 0..30 {
        for candidate in [best_u - step, best_u + step] {
            let d = haversine_km(orbit::track_point(rgt, candidate), point);
            if d < best {
                best = d;
                best_u = candidate;
            }
        }
        step /= 2.0;
    }
    best
}

#[test]
fn model_matches_known_points_of_nasa_tracks() {
    // Vertices of NASA's tracks, from orbits.json.
    for (rgt, point) in [
        (1, (-0.13185, 0.02796)),
        (1, (-2.83352, 26.32795)),
        (1, (-4.8286, 43.24016)),
        (1, (-5.77174, 49.988)),
    ] {
        let d = distance_to_model(rgt, point);
        assert!(d < 3.0, "rgt {rgt} at {point:?}: {d:.2} km");
    }
}

#[test]
fn model_lies_within_3_km_of_every_nasa_track() {
    let path = util::shared_file("orbits.json");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let features = document["features"].as_array().unwrap();
    assert_eq!(features.len(), 1387);
    let mut worst = (0.0f64, 0u16);
    for feature in features {
        let rgt: u16 = feature["properties"]["orbit"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        for line in feature["geometry"]["coordinates"].as_array().unwrap() {
            for vertex in line.as_array().unwrap() {
                let point = (vertex[0].as_f64().unwrap(), vertex[1].as_f64().unwrap());
                let d = distance_to_model(rgt, point);
                if d > worst.0 {
                    worst = (d, rgt);
                }
            }
        }
    }
    assert!(
        worst.0 < 3.0,
        "RGT {} is {:.2} km from the model",
        worst.1,
        worst.0
    );
}
