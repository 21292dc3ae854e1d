//! Command-line behaviour: usage errors, inspect.

use super::util::{self, Workdir};

#[test]
fn usage_errors_exit_1_with_one_line() {
    let work = Workdir::new();
    for args in [
        &["run"][..],
        &["frobnicate"][..],
        &["run", "m.yaml", "--threads", "0"][..],
        &["run", "m.yaml", "--shard", "3/3"][..],
    ] {
        let run = work.run(args);
        assert_eq!(run.code(), 1, "{args:?}: {}", run.stderr());
        assert_eq!(
            run.stderr().trim().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr()
        );
    }
    let run = work.run(&["run", "--shard", "3/3", "m.yaml"]);
    assert!(
        run.stderr().contains("K must be less than N"),
        "{}",
        run.stderr()
    );
}

#[test]
fn inspect_lists_beams_variables_and_fills_of_the_real_granule() {
    let path = util::shared_file("real/processed_ATL08_20200821122613_08730802_004_01.h5");
    let work = Workdir::new();
    let text = work
        .run(&["inspect", "--json", path.to_str().unwrap()])
        .success();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["rgt"], 873);
    assert_eq!(document["cycle"], 8);
    assert_eq!(document["region"], 2);
    let beams: Vec<(String, String, u64)> = document["beams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["beam"].as_str().unwrap().to_string(),
                b["strength"].as_str().unwrap().to_string(),
                b["land_segments"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        beams,
        vec![
            ("gt1l".into(), "strong".into(), 14),
            ("gt1r".into(), "weak".into(), 8),
            ("gt2l".into(), "strong".into(), 8),
            ("gt2r".into(), "weak".into(), 5)
        ]
    );
    let h_canopy = document["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "/gt1l/land_segments/canopy/h_canopy")
        .unwrap();
    assert_eq!(h_canopy["dtype"], "float32");
    assert_eq!(h_canopy["shape"], serde_json::json!([14]));
    assert_eq!(h_canopy["chunks"], serde_json::json!([10000]));
    assert_eq!(h_canopy["fill"].as_f64().unwrap(), f64::from(f32::MAX));
    let text = work.run(&["inspect", path.to_str().unwrap()]).success();
    assert!(
        text.contains("gt1l  strong  spot 1  14 land segments  2717 photons"),
        "{text}"
    );
}

#[test]
fn inspect_of_a_missing_or_non_hdf5_file_exits_1() {
    let work = Workdir::new();
    let run = work.run(&["inspect", "nope.h5"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("nope.h5: no such file"),
        "{}",
        run.stderr()
    );
    work.write("text.h5", "this is not HDF5\n");
    let run = work.run(&["inspect", "text.h5"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("not a readable HDF5 file"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stderr().trim().lines().count(), 1);
}
