//! `icesat2 run` end to end on synthetic and real granules; every dataset is
//! compared with an independent extraction done the notebook's way (h5py +
//! shapely `within`) and opened with geopandas, DuckDB and pyarrow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use icesat2::granule::Hdf5Source;
use icesat2::granule::reader::ReaderFile;
use icesat2::report::RunReport;
use icesat2::store;
use icesat2::synth::SynthOptions;

use super::util::{self, NOTEBOOK_POLYGON, Workdir};

const VARIABLES: [&str; 5] = [
    "land_segments/canopy/h_canopy",
    "land_segments/terrain/h_te_best_fit",
    "land_segments/canopy/canopy_h_metrics",
    "land_segments/night_flag",
    "signal_photons/ph_h",
];

/// Types of `VARIABLES` for check_readers.py.
const VARIABLE_TYPES: [&str; 5] = [
    "h_canopy=float32",
    "h_te_best_fit=float32",
    "canopy_h_metrics=fixed<float32,18>",
    "night_flag=int32",
    "ph_h=list<float32>",
];

/// A run of `manifest` over `granules`, with the region in `region.json`.
struct Case<'a> {
    granules: &'a Path,
    region: &'a str,
    variables: &'a [&'a str],
    /// Extra manifest text (filters, time, output).
    extra: &'a str,
    /// Extra arguments for notebook_extract.py.
    python: Vec<String>,
}

impl Case<'_> {
    /// Runs the case; returns the work folder, the report and the row count
    /// the independent extraction agreed on.
    fn run(&self) -> (Workdir, RunReport, usize) {
        let work = Workdir::new();
        work.write("region.json", self.region);
        let variables: String = self
            .variables
            .iter()
            .map(|v| format!("  - {v}\n"))
            .collect();
        let extra = if self.extra.contains("output:") {
            String::new()
        } else {
            "output: { path: out }\n".to_string()
        };
        let manifest = format!(
            "region: {{ geojson: region.json }}\nvariables:\n{variables}source: {{ local: {{ path: {} }} }}\n{}{extra}",
            self.granules.display(),
            self.extra
        );
        work.write("m.yaml", &manifest);
        let run = work.run(&["run", "m.yaml"]);
        assert_eq!(run.code(), 0, "{}", run.stderr());
        let report = read_report(&work.join("out"));
        let mut args = vec![
            "--granules".to_string(),
            self.granules.display().to_string(),
            "--region".into(),
            work.join("region.json").display().to_string(),
            "--dataset".into(),
            work.join("out").display().to_string(),
            "--variables".into(),
            self.variables.join(","),
        ];
        args.extend(self.python.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rows: usize = util::python_script("notebook_extract.py", &args)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(rows as u64, report.rows_written);
        (work, report, rows)
    }
}

pub(super) fn read_report(output: &Path) -> RunReport {
    let mut reports: Vec<PathBuf> = std::fs::read_dir(output.join("_runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    // The newest by time written: names start with the second a run
    // started, and two runs in one second sort by their random part.
    reports.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
    let text = std::fs::read_to_string(reports.last().unwrap()).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn demo_manifest_runs_and_opens_in_every_reader() {
    let work = Workdir::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(work.join("pipelines/granules")).unwrap();
    std::fs::copy(
        repo.join("pipelines/tasmania.yaml"),
        work.join("pipelines/tasmania.yaml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repo.join("pipelines/granules")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            work.join("pipelines/granules").join(entry.file_name()),
        )
        .unwrap();
    }
    let run = work.run(&["run", "pipelines/tasmania.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let output = work.join("out/tasmania");
    let report = read_report(&output);
    assert_eq!(report.granules.planned, 3);
    assert_eq!(report.granules.done, 3);
    assert!(report.rows_written > 30, "{}", report.rows_written);
    let mut args = vec![output.display().to_string()];
    args.extend(
        [
            "h_canopy=float32",
            "h_canopy_uncertainty=float32",
            "h_te_best_fit=float32",
            "canopy_h_metrics=fixed<float32,18>",
            "night_flag=int32",
            "ph_h=list<float32>",
            "--partitions=year,month",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rows: u64 = util::python_script("check_readers.py", &args)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rows, report.rows_written);
    work.write("poly.json", NOTEBOOK_POLYGON);
    let rows: u64 = util::python_script(
        "notebook_extract.py",
        &[
            "--granules",
            work.join("pipelines/granules").to_str().unwrap(),
            "--region",
            work.join("poly.json").to_str().unwrap(),
            "--dataset",
            output.to_str().unwrap(),
            "--variables",
            "land_segments/canopy/h_canopy,land_segments/canopy/h_canopy_uncertainty,land_segments/terrain/h_te_best_fit,land_segments/canopy/canopy_h_metrics,land_segments/night_flag,signal_photons/ph_h",
        ],
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(rows, report.rows_written);
    // Partition folders as PRODUCT.md shows them.
    assert!(output.join("year=2019/month=04").is_dir());
}

#[test]
fn notebook_polygon_matches_the_notebook_way() {
    let granules = util::tasmania_granules();
    let (_, report, rows) = Case {
        granules: &granules,
        region: NOTEBOOK_POLYGON,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows >= 40, "{rows}");
    assert_eq!(report.granules.done, 4);
}

#[test]
fn multipolygon_with_a_hole_matches_the_notebook_way() {
    let granules = util::tasmania_granules();
    let region = r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[
          [[[147.2,-43.25],[147.55,-43.25],[147.55,-43.05],[147.2,-43.05],[147.2,-43.25]],
           [[147.3,-43.18],[147.45,-43.18],[147.45,-43.10],[147.3,-43.10],[147.3,-43.18]]]]}},
        {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":
          [[[147.0,-43.0],[147.7,-43.0],[147.7,-42.98],[147.0,-42.98],[147.0,-43.0]]]}}]}"#;
    let (work, _, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows > 200, "{rows}");
    // No kept point lies in the hole.
    let text = util::python_script(
        "query.py",
        &[
            work.join("out").to_str().unwrap(),
            "select count(*) from t where longitude > 147.3 and longitude < 147.45 and latitude > -43.18 and latitude < -43.10",
        ],
    );
    assert_eq!(text.trim(), "0");
}

#[test]
fn strong_beam_filter_matches_the_notebook_way() {
    let granules = util::tasmania_granules();
    let region = r#"{"type":"Polygon","coordinates":[[[147.2,-43.25],[147.55,-43.25],[147.55,-43.05],[147.2,-43.05],[147.2,-43.25]]]}"#;
    let (work, report, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "filters: { beams: strong }\n",
        python: vec!["--beams".into(), "strong".into()],
    }
    .run();
    assert!(rows > 100, "{rows}");
    let text = util::python_script(
        "query.py",
        &[
            work.join("out").to_str().unwrap(),
            "select distinct beam_strength from t",
        ],
    );
    assert_eq!(text.trim(), "strong");
    assert!(
        report
            .details
            .iter()
            .all(|detail| detail.beams.iter().all(|beam| beam.strength == "strong"))
    );
}

#[test]
fn time_window_cutting_a_granule_matches_the_notebook_way() {
    let granules = util::tasmania_granules();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&granules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // End the window halfway through the first granule's centre beam.
    let file = ReaderFile::open(Arc::new(store::open_local(&files[0]).unwrap())).unwrap();
    let times = file.read_all("/gt2l/land_segments/delta_time").unwrap();
    let middle = times.get_f64(times.len() / 2).unwrap();
    let end_us = icesat2::granule::unix_micros(middle);
    let end = chrono::DateTime::from_timestamp_micros(end_us)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let region = TASMANIA_BOX;
    let extra = format!("time: {{ start: 2019-01-01, end: '{end}' }}\n");
    let start_us = chrono::DateTime::parse_from_rfc3339("2019-01-01T00:00:00Z")
        .unwrap()
        .timestamp_micros();
    let (_, report, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: &extra,
        python: vec![
            "--start-us".into(),
            start_us.to_string(),
            "--end-us".into(),
            end_us.to_string(),
        ],
    }
    .run();
    assert!(rows > 50, "{rows}");
    // Later granules are skipped by name, without being opened.
    assert_eq!(report.granules.done, 1, "{:?}", report.skipped_granules);
    assert_eq!(report.granules.skipped, 3);
    let first = &report.details[0];
    let kept: u64 = first.beams.iter().map(|b| b.kept).sum();
    assert!(kept < first.beams.iter().map(|b| b.segments).sum::<u64>() / 2 + 100);
}

#[test]
fn night_only_and_drop_fill_match_the_notebook_way() {
    let granules = util::tasmania_granules();
    let region = TASMANIA_BOX;
    let (_, _, all_rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    let (_, _, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "filters: { night_only: true, drop_fill: [h_canopy] }\n",
        python: vec![
            "--night-only".into(),
            "--drop-fill".into(),
            "h_canopy".into(),
        ],
    }
    .run();
    assert!(rows > 0 && rows < all_rows, "{rows} of {all_rows}");
}

#[test]
fn beam_without_land_segments_is_skipped_quietly() {
    let granules = util::synthetic(
        "tasmania-bare-gt2l",
        &SynthOptions {
            granules: 2,
            seed: 9,
            near: Some((147.368, -43.143)),
            segments: 300,
            photons: true,
            bare_beams: vec!["gt2l".into()],
            layout: icesat2::synth::Layout::R006,
        },
    );
    let region = TASMANIA_BOX;
    let (work, report, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows > 100);
    assert_eq!(report.granules.failed, vec![]);
    let text = util::python_script(
        "query.py",
        &[
            work.join("out").to_str().unwrap(),
            "select count(*) from t where beam = 'gt2l'",
        ],
    );
    assert_eq!(text.trim(), "0");
    for detail in &report.details {
        let gt2l = detail.beams.iter().find(|b| b.beam == "gt2l").unwrap();
        assert_eq!((gt2l.segments, gt2l.kept), (0, 0));
    }
}

#[test]
fn partition_columns_move_to_folders() {
    let granules = util::tasmania_granules();
    let region = NOTEBOOK_POLYGON;
    let (work, _, _) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "output: { path: out, partition_by: [cycle, rgt, beam] }\n",
        python: vec![],
    }
    .run();
    let out = work.join("out");
    let mut args = vec![out.display().to_string()];
    args.extend(VARIABLE_TYPES.map(String::from));
    args.push("--partitions=rgt,cycle,beam".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    util::python_script("check_readers.py", &args);
    let cycles: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_'))
        .collect();
    assert!(
        cycles.iter().all(|name| name.starts_with("cycle=")),
        "{cycles:?}"
    );
}

#[test]
fn small_row_groups_files_and_buffer_keep_every_row() {
    // Row groups of 500 rows and 50 kB for waiting rows (row groups written
    // early to bound memory), then also files closed at 10 kB (a
    // partition's rows span files). The rows must be those of a run with
    // the default settings, each file read back by pyarrow.
    let granules = util::tasmania_granules();
    let region = r#"{"type": "Polygon", "coordinates": [[[146.0, -44.5], [149.0, -44.5], [149.0, -41.5], [146.0, -41.5], [146.0, -44.5]]]}"#;
    let default = Workdir::new();
    default.write("region.json", region);
    default.write(
        "m.yaml",
        &format!(
            "region: {{ geojson: region.json }}\nvariables: [{}]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
            VARIABLES[..2].join(", "),
            granules.display()
        ),
    );
    default.run(&["run", "m.yaml"]).success();
    for (file_mb, many_files) in [(1.0, false), (0.01, true)] {
        let extra = format!(
            "output: {{ path: out, row_group_rows: 500, file_mb: {file_mb}, buffer_mb: 0.05 }}\n"
        );
        let (work, report, _) = Case {
            granules: &granules,
            region,
            variables: &VARIABLES[..2],
            extra: &extra,
            python: vec![],
        }
        .run();
        let rows = util::same_rows(&work.join("out"), &default.join("out"));
        assert_eq!(rows, report.rows_written);
        assert!(rows > 5_000, "{rows} rows: too few to span files");
        let report_rows: u64 = report.files.iter().map(|file| file.rows).sum();
        assert_eq!(report_rows, rows);

        let layout: std::collections::BTreeMap<String, Vec<u64>> = serde_json::from_str(
            &util::python_script("file_layout.py", &[work.join("out").to_str().unwrap()]),
        )
        .unwrap();
        let groups: Vec<u64> = layout.values().flatten().copied().collect();
        assert_eq!(groups.iter().sum::<u64>(), rows);
        assert!(groups.iter().all(|&n| (1..=500).contains(&n)), "{layout:?}");
        let folders: std::collections::BTreeSet<&str> = layout
            .keys()
            .filter_map(|path| path.rsplit_once('/').map(|(folder, _)| folder))
            .collect();
        if many_files {
            assert!(
                layout.len() > folders.len(),
                "no partition has a second file: {layout:?}"
            );
        } else {
            // One file per partition; a short row group before its last
            // was written early.
            assert_eq!(layout.len(), folders.len(), "{layout:?}");
            assert!(
                layout
                    .values()
                    .filter_map(|file| file.split_last())
                    .any(|(_, earlier)| earlier.iter().any(|&n| n < 500)),
                "no row group written early: {layout:?}"
            );
        }
    }
}

#[test]
fn a_second_run_reads_nothing_and_duplicates_nothing() {
    let granules = util::tasmania_granules();
    let case = Case {
        granules: &granules,
        region: NOTEBOOK_POLYGON,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    };
    let (work, report, _) = case.run();
    work.run(&["run", "m.yaml"]).success();
    let again = read_report(&work.join("out"));
    assert_eq!(again.granules.done, 0);
    assert_eq!(again.granules.already_done, report.granules.done);
    assert_eq!(again.rows_written, 0);
    let rows = util::python_script(
        "query.py",
        &[work.join("out").to_str().unwrap(), "select count(*) from t"],
    );
    assert_eq!(rows.trim(), report.rows_written.to_string());
}

#[test]
fn a_new_revision_of_a_granule_in_the_dataset_is_skipped_with_a_reason() {
    let work = Workdir::new();
    let granules = work.join("granules");
    std::fs::create_dir_all(&granules).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(util::tasmania_granules()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&path, granules.join(&name)).unwrap();
        names.push(name);
    }
    names.sort();
    let case = Case {
        granules: &granules,
        region: NOTEBOOK_POLYGON,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    };
    let (out, report, _) = case.run();
    assert_eq!(report.granules.done, 4);
    // NSIDC reprocesses a granule: revision 02 lands beside revision 01.
    let revised = names[0].replace("_01.h5", "_02.h5");
    assert_ne!(revised, names[0]);
    std::fs::copy(granules.join(&names[0]), granules.join(&revised)).unwrap();
    // And a newer release of another (the manifest names no release).
    let released = names[1].replace("_006_", "_007_");
    assert_ne!(released, names[1]);
    std::fs::copy(granules.join(&names[1]), granules.join(&released)).unwrap();
    out.run(&["run", "m.yaml"]).success();
    let again = read_report(&out.join("out"));
    assert_eq!(again.granules.done, 0);
    assert_eq!(again.rows_written, 0);
    let note = again
        .skipped_granules
        .iter()
        .find(|note| note.granule == revised)
        .unwrap_or_else(|| panic!("{revised} not skipped: {:?}", again.skipped_granules));
    assert!(
        note.reason.contains("another revision") && note.reason.contains(&names[0]),
        "{}",
        note.reason
    );
    let note = again
        .skipped_granules
        .iter()
        .find(|note| note.granule == released)
        .unwrap_or_else(|| panic!("{released} not skipped: {:?}", again.skipped_granules));
    assert!(note.reason.contains(&names[1]), "{}", note.reason);
    let rows = util::python_script(
        "query.py",
        &[out.join("out").to_str().unwrap(), "select count(*) from t"],
    );
    assert_eq!(rows.trim(), report.rows_written.to_string());
}

#[test]
fn synth_writes_the_release_007_layout_and_its_rows_match_the_notebook_way() {
    let work = Workdir::new();
    let written = work
        .run(&[
            "synth",
            "--out",
            "r007",
            "--granules",
            "2",
            "--seed",
            "21",
            "--near",
            "147.368,-43.143",
            "--segments",
            "600",
            "--layout",
            "r007",
        ])
        .success();
    let files: Vec<&str> = written.lines().collect();
    assert_eq!(files.len(), 2, "{written}");
    for file in &files {
        assert!(file.ends_with("_007_01.h5"), "{file}");
        let creation = hdf5::File::open(work.join(file)).unwrap().fcpl().unwrap();
        assert_eq!(creation.file_space_page_size(), 8 << 20);
        assert!(matches!(
            creation.file_space_strategy(),
            hdf5::file::FileSpaceStrategy::FreeSpaceManager {
                paged: true,
                persist: true,
                ..
            }
        ));
    }
    // Rows equal the notebook's h5py extraction (the same rows as release
    // 006's layout: tests/it/cloud.rs compares h5repack copies).
    let granules = work.join("r007");
    let (_, report, rows) = Case {
        granules: &granules,
        region: NOTEBOOK_POLYGON,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert_eq!(report.granules.done, 2);
    assert!(rows > 20, "{rows} rows");
}

#[test]
fn real_release_004_granule_matches_the_notebook_way() {
    let (_folder, granules) =
        one_shared_granule("real/processed_ATL08_20200821122613_08730802_004_01.h5");
    let variables = [
        "land_segments/canopy/h_canopy",
        "land_segments/canopy/canopy_h_metrics",
        "land_segments/terrain/subset_te_flag",
        "land_segments/segment_landcover",
        "land_segments/canopy/canopy_rh_conf",
        "signal_photons/ph_h",
        "signal_photons/classed_pc_flag",
        // Release 005 and later only: nulls here, with a warning.
        "land_segments/canopy/h_canopy_20m",
    ];
    let region =
        r#"{"type":"Polygon","coordinates":[[[-180,27],[180,27],[180,60],[-180,60],[-180,27]]]}"#;
    let (_, report, rows) = Case {
        granules: &granules,
        region,
        variables: &variables,
        extra: "",
        python: vec![],
    }
    .run();
    assert_eq!(rows, 35);
    assert_eq!(report.rows_written, 35);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("h_canopy_20m is missing")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn real_release_006_clip_without_attributes_uses_the_catalog_fill() {
    let (_folder, granules) = one_shared_granule("real/ATL08_release006_clip_gt1r.h5");
    let variables = [
        "land_segments/canopy/h_canopy",
        "land_segments/canopy/canopy_h_metrics",
        "signal_photons/ph_h",
        "signal_photons/classed_pc_flag",
    ];
    let fills = r#"{"land_segments/canopy/h_canopy": 3.4028234663852886e+38, "land_segments/canopy/canopy_h_metrics": 3.4028234663852886e+38, "signal_photons/ph_h": 3.4028234663852886e+38}"#;
    let region = r#"{"type":"Polygon","coordinates":[[[-180,-89],[180,-89],[180,89],[-180,89],[-180,-89]]]}"#;
    let (work, _, rows) = Case {
        granules: &granules,
        region,
        variables: &variables,
        extra: "",
        python: vec!["--fills".into(), fills.into()],
    }
    .run();
    assert_eq!(rows, 9);
    // classed_pc_flag 0 (noise) is a value, not fill: the HDF5 fill property is never used.
    let zeros = util::python_script(
        "query.py",
        &[
            work.join("out").to_str().unwrap(),
            "select count(*) from (select unnest(classed_pc_flag) as c from t) where c = 0",
        ],
    );
    let nulls = util::python_script(
        "query.py",
        &[
            work.join("out").to_str().unwrap(),
            "select count(*) from (select unnest(classed_pc_flag) as c from t) where c is null",
        ],
    );
    assert_eq!(nulls.trim(), "0");
    assert!(zeros.trim().parse::<u64>().unwrap() > 0, "{zeros}");
}

/// A box around the synthetic Tasmanian granules' tracks.
const TASMANIA_BOX: &str = r#"{"type":"Polygon","coordinates":[[[147.2,-43.35],[147.55,-43.35],[147.55,-42.95],[147.2,-42.95],[147.2,-43.35]]]}"#;

/// Rewrites the granules of `source` into `out` as `other_tools.py KIND`
/// does; gives the names written.
fn rewrite(kind: &str, source: &Path, out: &Path, options: &[&str]) -> Vec<String> {
    let mut args = vec![kind, source.to_str().unwrap(), out.to_str().unwrap()];
    args.extend(options);
    util::python_script("other_tools.py", &args)
        .lines()
        .map(String::from)
        .collect()
}

/// The first `n` synthetic Tasmanian granules, copied into `folder`.
fn first_granules(folder: &Path, n: usize) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(util::tasmania_granules())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::create_dir_all(folder).unwrap();
    for file in &files[..n] {
        std::fs::copy(file, folder.join(file.file_name().unwrap())).unwrap();
    }
    folder.to_path_buf()
}

#[test]
fn beams_a_clip_tool_left_empty_have_no_segments_and_the_others_are_read() {
    // ICESat2VegR's clip writes a beam with no segments in the clip as the
    // beam's groups without datasets: land_segments with only empty canopy
    // and terrain groups, an empty signal_photons.
    let work = Workdir::new();
    let granules = work.join("granules");
    let names = rewrite(
        "bare",
        &util::tasmania_granules(),
        &granules,
        &["gt1l,gt2r"],
    );
    assert_eq!(names.len(), 4, "{names:?}");
    let (_, report, rows) = Case {
        granules: &granules,
        region: TASMANIA_BOX,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows > 1000, "{rows}");
    assert_eq!(report.granules.failed, vec![]);
    assert_eq!(report.granules.done, 4);
    assert_eq!(report.details.len(), 4);
    for detail in &report.details {
        let beams: Vec<&str> = detail.beams.iter().map(|b| b.beam.as_str()).collect();
        assert_eq!(beams, ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]);
        for beam in &detail.beams {
            if ["gt1l", "gt2r"].contains(&beam.beam.as_str()) {
                assert_eq!((beam.segments, beam.kept), (0, 0), "{beam:?}");
            } else {
                assert!(beam.segments > 200, "{beam:?}");
            }
        }
    }
    // inspect says the same of the file.
    let file = granules.join(&names[0]);
    let text = work.run(&["inspect", file.to_str().unwrap()]).success();
    for beam in ["gt1l", "gt2r"] {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(beam))
            .unwrap();
        assert!(
            line.ends_with("no land segments  no photons"),
            "{line}\n{text}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(
        &work
            .run(&["inspect", file.to_str().unwrap(), "--json"])
            .success(),
    )
    .unwrap();
    for beam in json["beams"].as_array().unwrap() {
        let bare = ["gt1l", "gt2r"].contains(&beam["beam"].as_str().unwrap());
        assert_eq!(beam["land_segments"].is_null(), bare, "{beam}");
        assert_eq!(beam["photons"].is_null(), bare, "{beam}");
    }
}

#[test]
fn granules_rewritten_by_xarray_and_h5netcdf_are_read() {
    // xarray + h5netcdf write netCDF-4 (groups tracking creation order,
    // dimension scales, variable-length strings), with a NaN _FillValue on
    // latitude, longitude and delta_time; gt3r, orbit_info and gt2l's
    // h_te_best_fit are left out.
    let work = Workdir::new();
    let source = first_granules(&work.join("source"), 2);
    let granules = work.join("granules");
    let names = rewrite(
        "xarray",
        &source,
        &granules,
        &["gt3r", "gt2l/land_segments/terrain/h_te_best_fit"],
    );
    assert_eq!(names.len(), 2, "{names:?}");
    let (out, report, rows) = Case {
        granules: &granules,
        region: TASMANIA_BOX,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows > 500, "{rows}");
    assert_eq!(report.granules.failed, vec![]);
    for detail in &report.details {
        let beams: Vec<&str> = detail.beams.iter().map(|b| b.beam.as_str()).collect();
        assert_eq!(beams, ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l"]);
    }
    // The missing variable: nulls, and a warning per granule.
    for name in &names {
        let warning = format!("{name}: gt2l/land_segments/terrain/h_te_best_fit is missing");
        assert!(
            report.warnings.iter().any(|w| w.starts_with(&warning)),
            "{:?}",
            report.warnings
        );
    }
    let counts = util::python_script(
        "query.py",
        &[
            out.join("out").to_str().unwrap(),
            "select beam = 'gt2l', count(*), count(h_te_best_fit), count(distinct rgt) from t group by all order by 1",
        ],
    );
    let counts: Vec<Vec<u64>> = counts
        .lines()
        .map(|line| {
            line.split('\t')
                .skip(1)
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .collect();
    // Other beams: values; gt2l: rows without them. RGTs from the names.
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts[0][1] > 0 && counts[0][2] == 2, "{counts:?}");
    assert!(counts[1][0] > 0 && counts[1][1] == 0, "{counts:?}");
}

#[test]
fn orbit_info_stored_as_float_gives_the_same_rows_and_strengths() {
    // orbit_info/rgt and cycle_number as float64, sc_orient as float32;
    // the beams' strength and spot attributes removed, so both come from
    // sc_orient.
    let original = util::tasmania_granules();
    let work = Workdir::new();
    let granules = work.join("granules");
    let names = rewrite("float-orbit", &original, &granules, &[]);
    assert_eq!(names.len(), 4, "{names:?}");
    let (floats, report, rows) = Case {
        granules: &granules,
        region: TASMANIA_BOX,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    assert!(rows > 1000, "{rows}");
    assert_eq!(report.granules.done, 4);
    let reference = Workdir::new();
    reference.write("region.json", TASMANIA_BOX);
    reference.write(
        "m.yaml",
        &format!(
            "region: {{ geojson: region.json }}\nvariables: [{}]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
            VARIABLES.join(", "),
            original.display()
        ),
    );
    reference.run(&["run", "m.yaml"]).success();
    // beam_strength, spot, rgt and cycle included.
    assert_eq!(
        util::same_rows(&floats.join("out"), &reference.join("out")),
        rows as u64
    );
    // The beams' strengths and counts in the reports too.
    let beams = |report: &RunReport| {
        let mut details: Vec<_> = report
            .details
            .iter()
            .map(|detail| (detail.granule.clone(), detail.beams.clone()))
            .collect();
        details.sort_by(|a, b| a.0.cmp(&b.0));
        details
    };
    assert_eq!(beams(&report), beams(&read_report(&reference.join("out"))));
    // Read from the file, not the name: under a name that gives nothing,
    // the floats give the RGT, cycle and orientation.
    let open = |folder: &Path| {
        ReaderFile::open(Arc::new(
            store::open_local(&folder.join(&names[0])).unwrap(),
        ))
        .unwrap()
    };
    let (float_file, int_file) = (open(&granules), open(&original));
    let float_meta = icesat2::granule::granule_meta(&float_file, "clip.h5").unwrap();
    let int_meta = icesat2::granule::granule_meta(&int_file, "clip.h5").unwrap();
    assert_eq!(float_meta, int_meta);
    assert_eq!((float_meta.rgt, float_meta.cycle), (337, 3));
    assert!(float_meta.sc_orient.is_some());
    assert_eq!(
        icesat2::granule::beams(&float_file, &float_meta).unwrap(),
        icesat2::granule::beams(&int_file, &int_meta).unwrap()
    );
}

#[test]
fn a_where_filter_keeps_exactly_the_rows_it_names() {
    let granules = util::tasmania_granules();
    let region = TASMANIA_BOX;
    let (_, _, all_rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "",
        python: vec![],
    }
    .run();
    let (_, report, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: "filters: { where: \"h_canopy > 20\" }\n",
        python: vec!["--where".into(), "h_canopy > 20".into()],
    }
    .run();
    assert!(rows > 0 && rows < all_rows, "{rows} of {all_rows}");
    assert_eq!(report.rows_written, rows as u64);
    let kept: u64 = report
        .details
        .iter()
        .flat_map(|granule| &granule.beams)
        .map(|beam| beam.kept)
        .sum();
    assert_eq!(
        kept, rows as u64,
        "the report's kept counts follow the filter"
    );
}

#[test]
fn a_where_filter_reads_quality_flags_it_names_without_writing_them() {
    let granules = util::tasmania_granules();
    let region = TASMANIA_BOX;
    let expression = "h_canopy < 80 AND msw_flag <= 1 AND (cloud_flag_atm IS NULL OR cloud_flag_atm < 3) \
                      AND canopy_rh_conf > 0 AND night_flag = 1";
    let (work, _, rows) = Case {
        granules: &granules,
        region,
        variables: &VARIABLES,
        extra: &format!("filters: {{ where: \"{expression}\" }}\n"),
        python: vec![
            "--where".into(),
            expression.into(),
            "--where-variables".into(),
            "land_segments/msw_flag,land_segments/cloud_flag_atm,land_segments/canopy/canopy_rh_conf"
                .into(),
        ],
    }
    .run();
    assert!(rows > 0, "the filter kept no row");
    // Only the requested columns are written.
    let file = walkdir(&work.join("out"))
        .into_iter()
        .find(|path| path.extension().is_some_and(|e| e == "parquet"))
        .expect("a data file");
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap())
            .unwrap();
    let columns: Vec<String> = parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|field| field.name().to_string())
        .collect();
    assert!(columns.contains(&"night_flag".to_string()), "{columns:?}");
    for hidden in ["msw_flag", "cloud_flag_atm", "canopy_rh_conf"] {
        assert!(
            !columns.contains(&hidden.to_string()),
            "{hidden} written: {columns:?}"
        );
    }
}

/// Every file under `root`, recursively.
fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn twenty_metre_rows_equal_an_h5py_extraction_on_synthetic_granules() {
    let granules = util::tasmania_granules();
    let variables = [
        "land_segments/canopy/h_canopy",
        "land_segments/canopy/h_canopy_20m",
        "land_segments/terrain/h_te_best_fit_20m",
        "land_segments/canopy/subset_can_flag",
        "land_segments/canopy/canopy_h_metrics",
    ];
    let (_, _, segments) = Case {
        granules: &granules,
        region: TASMANIA_BOX,
        variables: &variables,
        extra: "",
        python: vec![],
    }
    .run();
    let (_, report, rows) = Case {
        granules: &granules,
        region: TASMANIA_BOX,
        variables: &variables,
        extra: "resolution: 20m\n",
        python: vec!["--resolution".into(), "20m".into()],
    }
    .run();
    assert!(
        rows > 4 * segments,
        "{rows} 20 m rows for {segments} segments"
    );
    assert_eq!(report.rows_written, rows as u64);
}

#[test]
fn twenty_metre_rows_of_a_real_granule_use_their_own_points() {
    let (_folder, granules) = one_shared_granule("real/ATL08_release006_clip_gt1r.h5");
    let variables = [
        "land_segments/canopy/h_canopy",
        "land_segments/canopy/h_canopy_20m",
        "land_segments/terrain/h_te_best_fit_20m",
    ];
    let fills = r#"{"land_segments/canopy/h_canopy": 3.4028234663852886e+38, "land_segments/canopy/h_canopy_20m": 3.4028234663852886e+38, "land_segments/terrain/h_te_best_fit_20m": 3.4028234663852886e+38}"#;
    // Across the track between segment centres: some sub-segments of the
    // segments at the edges are in, others out.
    let region = r#"{"type":"Polygon","coordinates":[[[-106.6,41.5333],[-106.5,41.5333],[-106.5,41.5371],[-106.6,41.5371],[-106.6,41.5333]]]}"#;
    let (_, _, rows) = Case {
        granules: &granules,
        region,
        variables: &variables,
        extra: "resolution: 20m\n",
        python: vec![
            "--fills".into(),
            fills.into(),
            "--resolution".into(),
            "20m".into(),
        ],
    }
    .run();
    assert!(rows > 5 && rows % 5 != 0, "{rows} rows");
}

/// A work folder whose `granules` folder holds a copy of one granule of
/// the shared reference data (`relative` under it).
fn one_shared_granule(relative: &str) -> (Workdir, PathBuf) {
    let path = util::shared_file(relative);
    let work = Workdir::new();
    let granules = work.join("granules");
    std::fs::create_dir_all(&granules).unwrap();
    std::fs::copy(&path, granules.join(path.file_name().unwrap())).unwrap();
    (work, granules)
}
