//! `icesat2 query`: the same numbers as DuckDB on the same files, partition
//! pruning visible in the plan, read-only, clear errors, every format.

use std::path::{Path, PathBuf};

use super::util::{self, Workdir};

/// A dataset written by `icesat2 run` over the Tasmania granules.
fn dataset() -> (Workdir, PathBuf) {
    let granules = util::tasmania_granules();
    let work = Workdir::new();
    work.write(
        "m.yaml",
        &format!(
            "region: {{ bbox: [147.0, -43.4, 147.7, -42.9] }}\nvariables: [land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit, land_segments/canopy/canopy_h_metrics, land_segments/night_flag, signal_photons/ph_h]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
            granules.display()
        ),
    );
    work.run(&["run", "m.yaml"]).success();
    let out = work.join("out");
    (work, out)
}

/// Rows as column name -> value (`--format json` writes one object per row).
type Rows = Vec<serde_json::Map<String, serde_json::Value>>;

fn ours(work: &Workdir, dataset: &Path, sql: &str) -> Rows {
    let text = work
        .run(&["query", dataset.to_str().unwrap(), sql, "--format", "json"])
        .success();
    serde_json::from_str(&text).unwrap()
}

fn duckdb(dataset: &Path, sql: &str) -> Rows {
    serde_json::from_str(&util::python_script(
        "duckdb_json.py",
        &[dataset.to_str().unwrap(), sql],
    ))
    .unwrap()
}

/// Values equal, numbers to 1e-9 relative (sums in another order).
fn assert_same(ours: &Rows, theirs: &Rows, sql: &str) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{sql}\nours {ours:?}\nduckdb {theirs:?}"
    );
    assert!(!ours.is_empty(), "{sql}: no rows");
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{sql}"
        );
        for (x, y) in a.values().zip(b.values()) {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                    "{sql}: {a:?} vs {b:?}"
                ),
                _ => assert_eq!(x, y, "{sql}: {a:?} vs {b:?}"),
            }
        }
    }
}

#[test]
fn five_aggregations_match_duckdb() {
    let (work, out) = dataset();
    let cases = [
        (
            "select year, month, count(*) as n, avg(h_canopy) as canopy from segments group by year, month order by year, month",
            "select year, month, count(*) as n, avg(h_canopy) as canopy from segments group by year, month order by year, month",
        ),
        (
            "select grid_cell(longitude, latitude, 0.1) as cell, count(*) as n, avg(h_canopy) as canopy from segments group by 1 order by 1",
            "select cast(floor((latitude + 90) / 0.1) as bigint) * cast(ceil(360 / 0.1) as bigint) + cast(floor((longitude + 180) / 0.1) as bigint) as cell, count(*) as n, avg(h_canopy) as canopy from segments group by 1 order by 1",
        ),
        (
            "select beam, beam_strength, count(*) as n, sum(case when night_flag = 1 then 1 else 0 end) as night, avg(h_te_best_fit) as terrain from segments group by beam, beam_strength order by beam, beam_strength",
            "select beam, beam_strength, count(*) as n, sum(case when night_flag = 1 then 1 else 0 end) as night, avg(h_te_best_fit) as terrain from segments group by beam, beam_strength order by beam, beam_strength",
        ),
        (
            "select count(*) as n, avg(h_canopy) as canopy from segments where ST_Within(geometry, ST_GeomFromText('POLYGON((147.3 -43.2, 147.45 -43.2, 147.45 -43.05, 147.3 -43.05, 147.3 -43.2))'))",
            "select count(*) as n, avg(h_canopy) as canopy from segments where longitude > 147.3 and longitude < 147.45 and latitude > -43.2 and latitude < -43.05",
        ),
        (
            "select granule, avg(rh(canopy_h_metrics, 50)) as rh50, max(array_length(ph_h)) as most_photons, sum(array_length(ph_h)) as photons from segments group by granule order by granule",
            "select granule, avg(canopy_h_metrics[9]) as rh50, max(len(ph_h)) as most_photons, sum(len(ph_h)) as photons from segments group by granule order by granule",
        ),
    ];
    for (sql, duck) in cases {
        assert_same(&ours(&work, &out, sql), &duckdb(&out, duck), sql);
    }
}

#[test]
fn partition_filters_prune_files() {
    let (work, out) = dataset();
    let plan = work
        .run(&[
            "query",
            out.to_str().unwrap(),
            "explain select avg(h_canopy) from segments where month = 7",
            "--format",
            "csv",
        ])
        .success();
    assert!(plan.contains("month=07"), "{plan}");
    assert!(!plan.contains("month=04"), "{plan}");
    let plan = work
        .run(&[
            "query",
            out.to_str().unwrap(),
            "explain select avg(h_canopy) from segments",
            "--format",
            "csv",
        ])
        .success();
    assert!(
        plan.contains("month=07") && plan.contains("month=04"),
        "{plan}"
    );
}

fn listing(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(listing(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn writes_are_refused_and_the_dataset_is_unchanged() {
    let (work, out) = dataset();
    let before = listing(&out);
    for sql in [
        "DROP TABLE segments",
        "INSERT INTO segments SELECT * FROM segments",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION 'elsewhere/'",
        "COPY (SELECT * FROM segments) TO 'copy.parquet'",
        "CREATE TABLE y AS SELECT 1",
        "DELETE FROM segments",
    ] {
        let run = work.run(&["query", out.to_str().unwrap(), sql]);
        assert_eq!(run.code(), 1, "{sql}: {}", run.stderr());
        assert!(
            run.stderr().contains("read-only"),
            "{sql}: {}",
            run.stderr()
        );
        assert_eq!(
            run.stderr().trim().lines().count(),
            1,
            "{sql}: {}",
            run.stderr()
        );
    }
    assert_eq!(listing(&out), before);
    assert!(!work.join("copy.parquet").exists());
}

#[test]
fn unknown_names_list_what_exists() {
    let (work, out) = dataset();
    let run = work.run(&["query", out.to_str().unwrap(), "select * from segmnts"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("tables: segments"),
        "{}",
        run.stderr()
    );
    let run = work.run(&[
        "query",
        out.to_str().unwrap(),
        "select h_canopyy from segments",
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("h_canopy"), "{}", run.stderr());
    assert_eq!(run.stderr().trim().lines().count(), 1, "{}", run.stderr());
    let run = work.run(&["query", "no-such-folder", "select 1"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("no-such-folder: not a dataset folder"),
        "{}",
        run.stderr()
    );
}

#[test]
fn csv_table_and_parquet_outputs() {
    let (work, out) = dataset();
    let dataset = out.to_str().unwrap();
    let csv = work.run(&["query", dataset, "select beam, segment_index, canopy_h_metrics, geometry from segments order by granule, beam, segment_index limit 3", "--format", "csv"]).success();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "beam,segment_index,canopy_h_metrics,geometry");
    assert_eq!(lines.len(), 4);
    assert!(lines[1].contains("POINT (147."), "{csv}");
    let table = work
        .run(&["query", dataset, "select count(*) as n from segments"])
        .success();
    assert!(table.contains("| n "), "{table}");
    work.run(&[
        "query",
        dataset,
        "select granule, h_canopy, ph_h from segments",
        "--format",
        "parquet",
        "--out",
        "results/result.parquet",
    ])
    .success();
    let n = util::python_script(
        "query.py",
        &[
            work.join("results").to_str().unwrap(),
            "select count(*) from t",
        ],
    );
    let total = util::python_script("query.py", &[dataset, "select count(*) from t"]);
    assert_eq!(n.trim(), total.trim());
    let run = work.run(&["query", dataset, "select 1", "--format", "parquet"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("--format parquet needs --out FILE"));
}

#[test]
fn grid_sizes_without_a_grid_are_errors_naming_the_argument() {
    let (work, out) = dataset();
    let dataset = out.to_str().unwrap();
    for (sql, function, got) in [
        ("select grid_lon(5, 0.0)", "grid_lon", "got 0.0"),
        ("select grid_lat(5, -1.0)", "grid_lat", "got -1.0"),
        (
            "select grid_cell(longitude, latitude, cast('NaN' as double)) from segments",
            "grid_cell",
            "got NaN",
        ),
        (
            "select grid_lon(5, cast('inf' as double))",
            "grid_lon",
            "got inf",
        ),
        (
            "select grid_lat(grid_cell(longitude, latitude, 0.1), cast('-Infinity' as double)) from segments",
            "grid_lat",
            "got -inf",
        ),
        (
            "select grid_cell(147.0, -43.0, 1e-300)",
            "grid_cell",
            "got 1e-300",
        ),
    ] {
        let run = work.run(&["query", dataset, sql, "--format", "csv"]);
        let message = run.stderr();
        assert_eq!(run.code(), 1, "{sql}: {message}");
        assert_eq!(message.trim().lines().count(), 1, "{sql}: {message}");
        for word in [
            &format!("{function}: size_deg must be a finite number of degrees, at least 1e-7"),
            got,
        ] {
            assert!(message.contains(word), "{sql}: '{message}' lacks '{word}'");
        }
        assert!(!message.contains("panicked"), "{sql}: {message}");
    }
    // A null size is a null cell, and the smallest size has a grid.
    let rows = ours(
        &work,
        &out,
        "select grid_lon(5, cast(null as double)) as a, grid_cell(0.0, 0.0, 1e-7) as b",
    );
    // JSON leaves null values out.
    assert_eq!(rows[0].get("a"), None, "{rows:?}");
    // Row 900,000,000 of 3,600,000,000 columns, column 1,800,000,000.
    assert_eq!(rows[0]["b"], 900_000_000i64 * 3_600_000_000 + 1_800_000_000);
}

#[test]
fn a_query_over_its_memory_limit_fails_with_one_line() {
    let (work, out) = dataset();
    let dataset = out.to_str().unwrap();
    let total = ours(&work, &out, "select count(*) as n from segments")[0]["n"]
        .as_u64()
        .unwrap();
    // A sort reserves 10 MB to merge what it spilled: more than 1 MiB.
    let sorted = "select segment_index from segments order by h_canopy, segment_index";
    let run = work.run(&[
        "query",
        dataset,
        sorted,
        "--format",
        "csv",
        "--memory-mb",
        "1",
    ]);
    let message = run.stderr();
    assert_eq!(run.code(), 1, "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    for word in [
        "the query needs more memory than its limit of 1 MiB (--memory-mb)",
        "ExternalSorter",
    ] {
        assert!(message.contains(word), "'{message}' lacks '{word}'");
    }
    let csv = work
        .run(&[
            "query",
            dataset,
            sorted,
            "--format",
            "csv",
            "--memory-mb",
            "64",
        ])
        .success();
    assert_eq!(csv.lines().count() as u64, total + 1);
    // The table output holds every row until the end: it counts too.
    let run = work.run(&[
        "query",
        dataset,
        "select * from segments",
        "--memory-mb",
        "1",
    ]);
    let message = run.stderr();
    assert_eq!(run.code(), 1, "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(
        message.contains("limit of 1 MiB") && message.contains("table output"),
        "{message}"
    );
    // Streamed csv holds no rows: the same query fits.
    let csv = work
        .run(&[
            "query",
            dataset,
            "select * from segments",
            "--format",
            "csv",
            "--memory-mb",
            "1",
        ])
        .success();
    assert!(csv.lines().count() as u64 > total, "{}", csv.len());
    let run = work.run(&["query", dataset, "select 1", "--memory-mb", "0"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("--memory-mb"), "{}", run.stderr());
}
