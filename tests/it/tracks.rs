//! Track selection with the built-in model against the notebook's method on
//! NASA's tracks, for the notebook's polygon and 50 random polygons.

use icesat2::plan::tracks::{self, TrackLines};
use icesat2::region::Region;

use super::util;

#[test]
fn model_selection_includes_every_track_the_notebook_needs() {
    let (orbits, poly) = (
        util::shared_file("orbits.json"),
        util::shared_file("poly.json"),
    );
    let text = util::python_script(
        "notebook_tracks.py",
        &[orbits.to_str().unwrap(), poly.to_str().unwrap()],
    );
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 51);
    let mut n_must = 0;
    for (index, case) in cases.iter().enumerate() {
        let region = Region::from_json_value(case["polygon"].clone(), "case").unwrap();
        let selection = tracks::select(&region, 0.3, &TrackLines::Model);
        let must: Vec<u16> = case["must"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u16)
            .collect();
        let missed: Vec<u16> = must
            .iter()
            .copied()
            .filter(|rgt| !selection.rgts.contains(rgt))
            .collect();
        assert!(
            missed.is_empty(),
            "case {index} ({}): missed RGTs {missed:?}; selected {:?}",
            case["polygon"],
            selection.rgts
        );
        n_must += must.len();
    }
    assert!(n_must > 100, "{n_must}");
}

#[test]
fn orbits_file_selection_equals_the_notebook_method() {
    let (orbits, poly) = (
        util::shared_file("orbits.json"),
        util::shared_file("poly.json"),
    );
    let text = util::python_script(
        "notebook_tracks.py",
        &[orbits.to_str().unwrap(), poly.to_str().unwrap()],
    );
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let lines = TrackLines::File(tracks::load_orbits(&orbits).unwrap());
    // The notebook's polygon, at mid-latitude where the buffer is not widened.
    let region = Region::from_json_value(cases[0]["polygon"].clone(), "case").unwrap();
    let ours: Vec<u16> = tracks::select(&region, 0.3, &lines)
        .rgts
        .into_iter()
        .collect();
    let notebook: Vec<u16> = cases[0]["notebook"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u16)
        .collect();
    assert_eq!(ours, notebook);
}
