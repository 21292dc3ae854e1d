//! Bad manifests: exit 1, one line naming the field or line, nothing written.

use super::util::Workdir;

const GOOD: &str = "\
name: t
time: { start: 2019-01-01, end: 2019-01-31 }
region:
  bbox: [147.0, -44.0, 148.0, -43.0]
variables:
  - land_segments/canopy/h_canopy
source:
  local: { path: granules }
output:
  path: out
";

/// Writes `manifest` (plus an empty granule folder and a few region files),
/// runs it, and checks exit 1, one line containing `expected`, no output folder.
#[track_caller]
fn check(manifest: &str, expected: &str) {
    let work = Workdir::new();
    std::fs::create_dir_all(work.join("granules")).unwrap();
    work.write(
        "open.json",
        r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#,
    );
    work.write(
        "bowtie.json",
        r#"{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}"#,
    );
    work.write(
        "empty.json",
        r#"{"type":"FeatureCollection","features":[]}"#,
    );
    work.write("a-file", "not a folder");
    work.write("m.yaml", manifest);
    let run = work.run(&["run", "m.yaml"]);
    let stderr = run.stderr();
    assert_eq!(
        run.code(),
        1,
        "expected exit 1 for {expected:?}; stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !work.join("out").exists(),
        "output folder created for {expected:?}"
    );
}

fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replace(from, to)
}

#[test]
fn the_good_manifest_runs() {
    let work = Workdir::new();
    std::fs::create_dir_all(work.join("granules")).unwrap();
    work.write("m.yaml", GOOD);
    work.run(&["run", "m.yaml"]).success();
    assert!(work.join("out/_runs").is_dir());
}

#[test]
fn malformed_yaml() {
    check("name: [unclosed\n", "m.yaml: line");
}

#[test]
fn unknown_field() {
    check(&format!("{GOOD}colour: blue\n"), "unknown field `colour`");
}

#[test]
fn unknown_nested_field() {
    check(
        &with("  path: out\n", "  path: out\n  compresion: zstd\n"),
        "compresion",
    );
}

#[test]
fn wrong_type() {
    check(
        &format!("{GOOD}filters: {{ night_only: perhaps }}\n"),
        "night_only: perhaps",
    );
}

#[test]
fn end_before_start() {
    check(
        &with("end: 2019-01-31", "end: 2018-12-31"),
        "time.end: 2018-12-31T23:59:59.999999+00:00 is before time.start",
    );
}

#[test]
fn bad_date() {
    check(
        &with("start: 2019-01-01", "start: 01/01/2019"),
        "time.start: '01/01/2019' is neither a date",
    );
}

#[test]
fn missing_region_file() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  geojson: nowhere.json",
        ),
        "region.geojson:",
    );
}

#[test]
fn unclosed_polygon() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  geojson: open.json",
        ),
        "is not closed",
    );
}

#[test]
fn self_intersecting_polygon() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  geojson: bowtie.json",
        ),
        "not a valid polygon",
    );
}

#[test]
fn empty_region() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  geojson: empty.json",
        ),
        "no polygon in the region",
    );
}

#[test]
fn two_region_kinds() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  bbox: [147.0, -44.0, 148.0, -43.0]\n  geojson: open.json",
        ),
        "exactly one of",
    );
}

#[test]
fn bbox_out_of_order() {
    check(
        &with(
            "[147.0, -44.0, 148.0, -43.0]",
            "[148.0, -44.0, 147.0, -43.0]",
        ),
        "region.bbox: bbox: bbox west (148) must be less than east (147)",
    );
}

#[test]
fn bbox_with_three_numbers() {
    check(
        &with("[147.0, -44.0, 148.0, -43.0]", "[147.0, -44.0, 148.0]"),
        "needs 4 numbers",
    );
}

#[test]
fn negative_buffer() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  bbox: [147.0, -44.0, 148.0, -43.0]\n  track_buffer_deg: -0.1",
        ),
        "region.track_buffer_deg",
    );
}

#[test]
fn unknown_variable_with_a_near_miss() {
    check(
        &with(
            "land_segments/canopy/h_canopy",
            "land_segments/canopy/h_canopyy",
        ),
        "did you mean 'land_segments/canopy/h_canopy'?",
    );
}

#[test]
fn duplicate_column_names() {
    check(
        &with(
            "  - land_segments/canopy/h_canopy\n",
            "  - land_segments/canopy/h_canopy\n  - { path: land_segments/terrain/h_te_best_fit, name: h_canopy }\n",
        ),
        "two output columns would be named 'h_canopy'",
    );
}

#[test]
fn variable_named_like_a_derived_column() {
    check(
        &with(
            "  - land_segments/canopy/h_canopy\n",
            "  - land_segments/latitude\n",
        ),
        "two output columns would be named 'latitude'",
    );
}

#[test]
fn drop_fill_of_a_list_column() {
    check(
        &format!(
            "{}filters: {{ drop_fill: [canopy_h_metrics] }}\n",
            with(
                "  - land_segments/canopy/h_canopy\n",
                "  - land_segments/canopy/canopy_h_metrics\n"
            )
        ),
        "'canopy_h_metrics' is a list column",
    );
}

#[test]
fn drop_fill_of_an_unknown_column() {
    check(
        &format!("{GOOD}filters: {{ drop_fill: [h_canopyy] }}\n"),
        "did you mean 'h_canopy'?",
    );
}

#[test]
fn unknown_beam() {
    check(
        &format!("{GOOD}filters: {{ beams: [gt1l, gt4l] }}\n"),
        "'gt4l' is not a beam",
    );
}

#[test]
fn unknown_beam_word() {
    check(
        &format!("{GOOD}filters: {{ beams: strongest }}\n"),
        "'strongest' is not all, strong, weak",
    );
}

#[test]
fn output_path_is_a_file() {
    check(&with("  path: out\n", "  path: a-file\n"), "output.path:");
}

#[test]
fn unknown_partition_key() {
    check(
        &with(
            "  path: out\n",
            "  path: out\n  partition_by: [year, day]\n",
        ),
        "'day' is not one of year, month, rgt, cycle, beam",
    );
}

#[test]
fn repeated_partition_key() {
    check(
        &with(
            "  path: out\n",
            "  path: out\n  partition_by: [year, year]\n",
        ),
        "listed twice",
    );
}

#[test]
fn source_folder_missing() {
    check(
        &with("path: granules", "path: elsewhere"),
        "source.local.path:",
    );
}

#[test]
fn two_sources() {
    check(
        &with(
            "  local: { path: granules }",
            "  local: { path: granules }\n  urls: [a.h5]",
        ),
        "exactly one of `local`, `urls`, `cmr`",
    );
}

#[test]
fn missing_url_file() {
    check(
        &with("  local: { path: granules }", "  urls: [nothere.h5]"),
        "source.urls[0]:",
    );
}

#[test]
fn wrong_product() {
    check(
        &format!("{GOOD}product: ATL03\n"),
        "product: 'ATL03' is not supported",
    );
}

#[test]
fn bad_release() {
    check(&format!("{GOOD}release: six\n"), "release: 'six'");
}

#[test]
fn cmr_tracks_mode_unknown() {
    check(
        &with(
            "  local: { path: granules }",
            "  cmr: { tracks: sideways, token_file: t }",
        ),
        "source.cmr.tracks: 'sideways' is not rgt or spatial",
    );
}

#[test]
fn cmr_access_unknown() {
    check(
        &with("  local: { path: granules }", "  cmr: { access: ftp }"),
        "source.cmr.access: 'ftp' is not s3 or https",
    );
}

#[test]
fn cmr_token_file_missing() {
    check(
        &with(
            "  local: { path: granules }",
            "  cmr: { token_file: no-such-token }",
        ),
        "source.cmr.token_file:",
    );
}

#[test]
fn orbits_file_missing() {
    check(
        &with(
            "  bbox: [147.0, -44.0, 148.0, -43.0]",
            "  bbox: [147.0, -44.0, 148.0, -43.0]\n  orbits: none.json",
        ),
        "region.orbits:",
    );
}

#[test]
fn missing_manifest() {
    let work = Workdir::new();
    let run = work.run(&["run", "absent.yaml"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("absent.yaml: no such manifest"),
        "{}",
        run.stderr()
    );
}

#[test]
fn validation_is_a_stage_of_its_own_without_the_network() {
    use icesat2::plan::{Plan, Source};
    // A CMR that nothing listens on and no credentials anywhere: the
    // manifest validates (URLs parsed, hosts checked); only resolving it
    // reads credentials and searches.
    let work = Workdir::new();
    let cmr = GOOD.replace(
        "  local: { path: granules }\n",
        "  cmr: { access: s3, cmr_url: 'http://127.0.0.1:9/search', token_file: missing-token.txt, token_hosts: [data.example.org] }\n",
    );
    work.write("m.yaml", &cmr);
    let validated = Plan::validate(&work.join("m.yaml")).unwrap();
    let Source::Cmr(spec) = &validated.source else {
        panic!("{:?}", validated.source);
    };
    assert!(spec.use_s3 && spec.by_track);
    assert_eq!(spec.cmr_url.as_str(), "http://127.0.0.1:9/search");
    assert_eq!(validated.request.variables.len(), 1);
    let err = validated.resolve().unwrap_err().to_string();
    assert!(err.contains("source.cmr.token_file"), "{err}");

    // Field errors are found by validation alone.
    for (field, bad) in [
        ("source.cmr.tracks", "tracks: nearby"),
        ("source.cmr.access", "access: ftp"),
        ("source.cmr.cmr_url", "cmr_url: 'not a url'"),
        ("source.cmr.token_hosts", "token_hosts: ['https://x.org']"),
    ] {
        work.write(
            "m.yaml",
            &GOOD.replace(
                "  local: { path: granules }\n",
                &format!("  cmr: {{ {bad} }}\n"),
            ),
        );
        let err = Plan::validate(&work.join("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{bad}: {err}");
    }
}

#[test]
fn where_filter_with_an_unknown_column() {
    check(
        &format!("{GOOD}filters: {{ where: \"h_canopyy > 20\" }}\n"),
        "filters.where: no column or ATL08 variable named 'h_canopyy'; did you mean 'h_canopy'?",
    );
    check(
        &format!("{GOOD}filters: {{ where: \"h_canopy > 20 AND msw_flg = 0\" }}\n"),
        "did you mean 'msw_flag'?",
    );
}

#[test]
fn where_filter_that_is_not_a_boolean_or_not_sql() {
    check(
        &format!("{GOOD}filters: {{ where: \"h_canopy + 1\" }}\n"),
        "filters.where: is not a boolean expression",
    );
    check(
        &format!("{GOOD}filters: {{ where: \"h_canopy >\" }}\n"),
        "filters.where",
    );
    check(
        &format!("{GOOD}filters: {{ where: \" \" }}\n"),
        "filters.where: is empty",
    );
}

#[test]
fn twenty_metre_rows_take_no_photon_variables_and_only_known_resolutions() {
    check(
        &format!(
            "{}resolution: 20m\n",
            with(
                "  - land_segments/canopy/h_canopy\n",
                "  - land_segments/canopy/h_canopy\n  - signal_photons/ph_h\n"
            )
        ),
        "variables[1]: 'signal_photons/ph_h' is a photon variable",
    );
    check(
        &format!("{GOOD}resolution: 30m\n"),
        "resolution: '30m' is not 100m or 20m",
    );
}

#[test]
fn output_order_is_granule_until_hilbert_is_built() {
    check(
        &GOOD.replace("  path: out\n", "  path: out\n  order: hilbert\n"),
        "output.order: hilbert (rows sorted along a space-filling curve) is not built yet",
    );
    check(
        &GOOD.replace("  path: out\n", "  path: out\n  order: random\n"),
        "output.order: 'random' is not granule or hilbert",
    );
    let work = Workdir::new();
    std::fs::create_dir_all(work.join("granules")).unwrap();
    work.write(
        "m.yaml",
        &GOOD.replace("  path: out\n", "  path: out\n  order: granule\n"),
    );
    work.run(&["run", "m.yaml"]).success();
}
