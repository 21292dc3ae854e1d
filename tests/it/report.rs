//! The quick-look report: written at the end of a run and by `icesat2
//! report`, opened in headless Chromium (renders, no console errors, no
//! network), its numbers equal to `icesat2 query` aggregations, and the map
//! alone as PNG.

use std::path::Path;

use serde_json::Value;

use super::util::{Workdir, python_script, tasmania_granules};

/// `icesat2 query ... --format csv`, without its header, as rows of fields.
fn query_rows(dir: &Workdir, sql: &str) -> Vec<Vec<String>> {
    let run = dir.run(&["query", "out", sql, "--format", "csv"]);
    run.success();
    run.stdout()
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// Rows of a DOM table as the browser read them, as text fields.
fn dom_rows(table: &Value, columns: usize) -> Vec<Vec<String>> {
    table
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array().unwrap()[..columns]
                .iter()
                .map(|cell| match cell {
                    Value::String(text) => text.clone(),
                    other => format!("{}", number(other) as u64),
                })
                .collect()
        })
        .collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

#[test]
fn run_report_renders_in_chromium_and_its_numbers_equal_query_aggregations() {
    let dir = Workdir::new();
    // The Tasmania granules and one that is not HDF5 (a failed granule).
    copy_granules(&dir, usize::MAX);
    dir.write(
        "granules/ATL08_20191018091339_03370509_006_01.h5",
        "not an HDF5 file",
    );
    dir.write(
        "m.yaml",
        r#"name: report-test
region: { bbox: [147.0, -43.7, 147.8, -42.6] }
variables:
  - land_segments/canopy/h_canopy
  - land_segments/terrain/h_te_best_fit
  - land_segments/night_flag
  - land_segments/canopy/canopy_h_metrics
  - signal_photons/ph_h
source: { local: { path: granules } }
output: { path: out, partition_by: [beam] }
"#,
    );
    let run = dir.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());

    // The run wrote its report next to the JSON one.
    let runs: Vec<_> = std::fs::read_dir(dir.join("out/_runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "html"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let automatic = std::fs::read_to_string(&runs[0]).unwrap();
    assert!(
        automatic.contains("<svg"),
        "no drawing in {}",
        runs[0].display()
    );

    let report = dir.run(&[
        "report",
        "./out",
        "--out",
        "report.html",
        "--png",
        "map.png",
    ]);
    report.success();
    assert_eq!(png_size(&dir.join("map.png")), (1000, 760));
    // The run counted its rows as it wrote them; `report` reads them back.
    assert!(
        automatic == std::fs::read_to_string(dir.join("report.html")).unwrap(),
        "the run's quick-look differs from `icesat2 report`'s"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("report-screenshot.png");
    let seen: Value = serde_json::from_str(&python_script(
        "browse_report.py",
        &[
            dir.join("report.html").to_str().unwrap(),
            screenshot.to_str().unwrap(),
        ],
    ))
    .unwrap();
    std::fs::copy(dir.join("map.png"), artifacts.join("map.png")).unwrap();
    eprintln!("screenshot: {}", screenshot.display());
    let (width, height) = png_size(&screenshot);
    assert!(width >= 1000 && height > 1500, "{width} x {height}");

    assert_eq!(seen["errors"], Value::Array(vec![]), "console errors");
    assert_eq!(seen["network"], Value::Array(vec![]), "network requests");
    assert_eq!(seen["scripts"], 0);
    assert!(number(&seen["map"]["w"]) > 600.0, "{}", seen["map"]);
    assert!(number(&seen["map"]["h"]) > 400.0, "{}", seen["map"]);
    assert!(number(&seen["map"]["rects"]) > 50.0, "{}", seen["map"]);
    assert!(number(&seen["map"]["texts"]) > 10.0, "{}", seen["map"]);
    assert!(
        seen["manifest"]
            .as_str()
            .unwrap()
            .contains("name: report-test")
    );
    assert_eq!(seen["failed"], 1);

    // Every number against icesat2 query over the same dataset.
    let total = query_rows(&dir, "select count(*) from segments");
    assert_eq!(number(&seen["rows"]), total[0][0].parse::<f64>().unwrap());
    assert!(number(&seen["rows"]) > 1000.0);
    assert_eq!(
        dom_rows(&seen["beams"], 3),
        query_rows(
            &dir,
            "select beam, beam_strength, count(*) from segments group by beam, beam_strength order by beam, beam_strength"
        )
    );
    assert_eq!(
        dom_rows(&seen["strengths"], 2),
        query_rows(
            &dir,
            "select beam_strength, count(*) from segments group by beam_strength order by beam_strength"
        )
    );
    let granules: Vec<Vec<String>> = dom_rows(&seen["granules"], 2)
        .into_iter()
        .filter(|row| row[1] != "0")
        .collect();
    assert_eq!(
        granules,
        query_rows(
            &dir,
            "select granule, count(*) from segments group by granule order by granule"
        )
    );
    assert_eq!(
        dom_rows(&seen["months"], 2),
        query_rows(
            &dir,
            "select to_char(time, '%Y-%m'), count(*) from segments group by 1 order by 1"
        )
    );
    let histograms = seen["histograms"].as_array().unwrap();
    let names: Vec<&str> = histograms
        .iter()
        .map(|h| h["variable"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h_canopy", "h_te_best_fit", "night_flag"]);
    for histogram in histograms {
        let name = histogram["variable"].as_str().unwrap();
        let expected = &query_rows(
            &dir,
            &format!(
                "select count({name}), count(*) - count({name}), min(cast({name} as double)), max(cast({name} as double)) from segments"
            ),
        )[0];
        assert_eq!(
            number(&histogram["count"]),
            expected[0].parse::<f64>().unwrap(),
            "{name}"
        );
        assert_eq!(
            number(&histogram["nulls"]),
            expected[1].parse::<f64>().unwrap(),
            "{name}"
        );
        assert_eq!(
            number(&histogram["min"]),
            expected[2].parse::<f64>().unwrap(),
            "{name}"
        );
        assert_eq!(
            number(&histogram["max"]),
            expected[3].parse::<f64>().unwrap(),
            "{name}"
        );
        let binned: f64 = histogram["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(number)
            .sum();
        assert_eq!(binned, number(&histogram["count"]), "{name} bins");
        assert!(
            number(&histogram["w"]) > 300.0 && number(&histogram["bars"]) >= 2.0,
            "{histogram}"
        );
    }
}

/// A run that resumes a dataset counts the rows it writes and reads back
/// only the files of the run before it: its quick-look is the one
/// `icesat2 report` makes of the whole dataset.
#[test]
fn a_resuming_run_reports_the_rows_it_counted_and_the_files_it_read_back() {
    let dir = Workdir::new();
    copy_granules(&dir, usize::MAX);
    dir.write(
        "m.yaml",
        r#"name: resumed
region: { bbox: [147.0, -43.7, 147.8, -42.6] }
variables: [land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit]
source: { local: { path: granules } }
output: { path: out }
"#,
    );
    dir.run(&["run", "m.yaml", "--shard", "0/2"]).success();
    let first: Vec<_> = html_reports(&dir);
    assert_eq!(first.len(), 1);
    let resumed = dir.run(&["run", "m.yaml"]);
    resumed.success();
    assert!(
        resumed.stderr().contains("resuming"),
        "{}",
        resumed.stderr()
    );
    let second: Vec<_> = html_reports(&dir)
        .into_iter()
        .filter(|path| !first.contains(path))
        .collect();
    assert_eq!(second.len(), 1);
    dir.run(&["report", "./out", "--out", "report.html"])
        .success();
    let counted = std::fs::read_to_string(&second[0]).unwrap();
    assert!(counted.contains("<svg"));
    assert!(
        counted == std::fs::read_to_string(dir.join("report.html")).unwrap(),
        "the resuming run's quick-look differs from `icesat2 report`'s"
    );
}

/// Copies the first `count` Tasmania granules into `granules/`.
fn copy_granules(dir: &Workdir, count: usize) {
    std::fs::create_dir_all(dir.join("granules")).unwrap();
    for entry in std::fs::read_dir(tasmania_granules()).unwrap().take(count) {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("granules").join(path.file_name().unwrap())).unwrap();
    }
}

/// The quick-looks under `out/_runs/`.
fn html_reports(dir: &Workdir) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("out/_runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "html"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn report_errors_name_the_problem() {
    let dir = Workdir::new();
    let missing = dir.run(&["report", "nowhere"]);
    assert_eq!(missing.code(), 1);
    let message = missing.stderr();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("nowhere"), "{message}");
    assert!(!dir.join("report.html").exists());

    copy_granules(&dir, 1);
    dir.write(
        "m.yaml",
        r#"region: { bbox: [147.0, -43.7, 147.8, -42.6] }
variables: [land_segments/terrain/h_te_best_fit]
source: { local: { path: granules } }
output: { path: out }
"#,
    );
    dir.run(&["run", "m.yaml"]).success();
    let bad = dir.run(&["report", "out", "--color", "h_canopy"]);
    assert_eq!(bad.code(), 1);
    let message = bad.stderr();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("--color h_canopy") && message.contains("h_te_best_fit"),
        "{message}"
    );
    assert!(!dir.join("report.html").exists());
}

#[test]
fn a_run_where_every_granule_failed_still_gets_a_report() {
    let dir = Workdir::new();
    dir.write(
        "granules/ATL08_20190419091339_03370309_006_01.h5",
        "<html>Earthdata Login</html>",
    );
    dir.write(
        "m.yaml",
        r#"region: { bbox: [147.0, -43.7, 147.8, -42.6] }
variables: [land_segments/canopy/h_canopy]
source: { local: { path: granules } }
output: { path: out }
"#,
    );
    let run = dir.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
    dir.run(&["report", "out", "--out", "report.html"])
        .success();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("ATL08_20190419091339_03370309_006_01.h5"));
    assert!(html.contains("text file, not HDF5"));
    assert!(html.contains("data-value=\"0\""));
}
