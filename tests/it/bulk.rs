//! Bulk runs: a run killed with SIGKILL at any point resumes to exactly the
//! rows of an uninterrupted run; shards writing into one output equal one
//! unsharded run; failed granules are isolated, listed and retried alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use icesat2::granule::GranuleName;
use icesat2::synth::SynthOptions;

use super::servers::{KeyRing, Listed, NasaConfig, NasaServer, S3Server};
use super::util::{self, Workdir};

/// Eight granules over Tasmania, rows in every beam and two months.
fn granules() -> PathBuf {
    util::synthetic(
        "bulk-8x300",
        &SynthOptions {
            granules: 8,
            seed: 11,
            near: Some((147.368, -43.143)),
            segments: 300,
            photons: true,
            bare_beams: vec![],
        },
    )
}

/// A manifest over `granules` committing every two granules, files split by beam too.
fn workdir(granules: &Path) -> Workdir {
    let work = Workdir::new();
    work.write(
        "m.yaml",
        &format!(
            "region: {{ bbox: [146.0, -44.5, 149.0, -41.5] }}\nvariables: [land_segments/canopy/h_canopy, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out, partition_by: [year, month, beam], checkpoint_granules: 2 }}\n",
            granules.display()
        ),
    );
    work
}

/// Files under `root` a reader would see (not under `_` or `.` entries).
fn visible_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

fn report(work: &Workdir, stderr: &str) -> serde_json::Value {
    let path = stderr
        .lines()
        .rev()
        .find_map(|line| line.split("; report ").nth(1))
        .unwrap_or_else(|| panic!("no report in {stderr}"));
    let path = Path::new(path.trim());
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        work.path().join(path)
    };
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn runs_killed_at_any_point_resume_to_the_rows_of_a_clean_run() {
    let granules = granules();
    let clean = workdir(&granules);
    clean.run(&["run", "m.yaml", "--threads", "2"]).success();
    let files = visible_files(&clean.join("out"));
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
    // Each sequence of kills, then a plain resume.
    let cases: &[&[&str]] = &[
        &["fetch:3"],
        &["decode:5"],
        &["staged:2"],
        &["journal:2"],
        &["publish:3"],
        &["journal:1", "staged:1", "publish:1"],
    ];
    let mut resumed_work = None;
    for kills in cases {
        let work = workdir(&granules);
        for kill in *kills {
            let run = work.run_with_env(
                &["run", "m.yaml", "--threads", "2"],
                &[("ICESAT2_KILL_AT", kill)],
            );
            assert_eq!(
                run.signal(),
                Some(9),
                "{kill}: not killed: {}",
                run.stderr()
            );
            // Whatever a reader sees now is whole.
            for file in visible_files(&work.join("out")) {
                util::python_script(
                    "query.py",
                    &[
                        file.parent().unwrap().to_str().unwrap(),
                        "select count(*) from t",
                    ],
                );
            }
        }
        let resumed = work.run(&["run", "m.yaml", "--threads", "2"]);
        resumed.success();
        let rows = util::same_rows(&clean.join("out"), &work.join("out"));
        assert!(rows > 1000, "{kills:?}: {rows}");
        let staging = work.join("out/_runs/staging");
        let left: Vec<_> = std::fs::read_dir(&staging)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{kills:?}: staged files left: {left:?}");
        let report = report(&work, &resumed.stderr());
        let tally = &report["granules"];
        assert_eq!(
            tally["done"].as_u64().unwrap() + tally["already_done"].as_u64().unwrap(),
            8,
            "{kills:?}: {tally}"
        );
        if kills[0].starts_with("staged:2") || kills[0].starts_with("publish") {
            assert!(
                tally["already_done"].as_u64().unwrap() >= 2,
                "{kills:?}: {tally}"
            );
        }
        resumed_work = Some((work, rows));
    }
    let (resumed_work, rows) = resumed_work.expect("cases ran");
    // A finished run resumed does nothing; --fresh starts over.
    let again = clean.run(&["run", "m.yaml"]);
    again.success();
    let tally = &report(&clean, &again.stderr())["granules"];
    assert_eq!(
        (tally["done"].as_u64(), tally["already_done"].as_u64()),
        (Some(0), Some(8))
    );
    assert_eq!(visible_files(&clean.join("out")), files);
    // What a run killed while deleting an earlier dataset leaves, hidden,
    // goes too; a file no run wrote stays.
    clean.write(
        "out/.icesat2-removed-7-1/year=2019/month=01/part-x.parquet",
        "left",
    );
    clean.write("out/.notes.txt", "mine");
    let fresh = clean.run(&["run", "m.yaml", "--fresh"]);
    fresh.success();
    assert_eq!(report(&clean, &fresh.stderr())["granules"]["done"], 8);
    let mut top: Vec<String> = std::fs::read_dir(clean.join("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('='))
        .collect();
    top.sort();
    assert_eq!(top, [".notes.txt", "_runs"]);
    // Nothing of the earlier run is left, and the rows are the same. (How
    // many files there are depends on which granules finish together
    // between checkpoints, so it is not compared.)
    let fresh_files = visible_files(&clean.join("out"));
    assert!(
        fresh_files.iter().all(|file| !files.contains(file)),
        "--fresh kept files of the earlier run: {fresh_files:?}"
    );
    assert_eq!(
        util::same_rows(&resumed_work.join("out"), &clean.join("out")),
        rows
    );
}

#[test]
fn three_shards_write_the_rows_of_one_run() {
    let granules = granules();
    let whole = workdir(&granules);
    whole.run(&["run", "m.yaml"]).success();
    let sharded = workdir(&granules);
    let children: Vec<_> = (0..3)
        .map(|k| {
            std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"))
                .args([
                    "run",
                    "m.yaml",
                    "--threads",
                    "1",
                    "--shard",
                    &format!("{k}/3"),
                ])
                .current_dir(sharded.path())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut planned = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        let report = report(&sharded, &stderr);
        assert!(report["shard"].as_str().unwrap().ends_with("/3"));
        assert_eq!(report["granules"]["done"], report["granules"]["planned"]);
        planned += report["granules"]["planned"].as_u64().unwrap();
    }
    assert_eq!(planned, 8);
    let rows = util::same_rows(&whole.join("out"), &sharded.join("out"));
    assert!(rows > 1000, "{rows}");
}

#[test]
fn failed_granules_are_listed_and_only_they_are_retried() {
    let folder = util::synthetic(
        "hundred-100x40",
        &SynthOptions {
            granules: 100,
            seed: 23,
            near: Some((147.368, -43.143)),
            segments: 40,
            photons: false,
            bare_beams: vec![],
        },
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 100);
    const BUCKET: &str = "nsidc-cumulus-prod-protected";
    let root = tempfile::tempdir().unwrap();
    let mut listed = Vec::new();
    let mut keys = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let start = GranuleName::parse(&name).unwrap().start;
        let key = format!("ATLAS/ATL08/006/{}/{name}", start.format("%Y/%m/%d"));
        let target = root.path().join(BUCKET).join(&key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, &target).unwrap();
        keys.push(target);
        listed.push(Listed {
            name,
            bucket: BUCKET.into(),
            key,
            size: std::fs::metadata(file).unwrap().len(),
            bbox: super::nasa::bbox_of(file),
            file: file.clone(),
        });
    }
    // Three corrupt objects: truncated, zeroed in the middle, cut to the superblock.
    let corrupt = [&keys[10], &keys[40], &keys[70]];
    let bytes = std::fs::read(corrupt[0]).unwrap();
    std::fs::write(corrupt[0], &bytes[..bytes.len() / 3]).unwrap();
    let mut bytes = std::fs::read(corrupt[1]).unwrap();
    let n = bytes.len();
    bytes[n / 4..n / 2].fill(0);
    std::fs::write(corrupt[1], &bytes).unwrap();
    let bytes = std::fs::read(corrupt[2]).unwrap();
    std::fs::write(corrupt[2], &bytes[..96]).unwrap();
    let ring = KeyRing::default();
    let s3 = S3Server::start(root.path(), ring.clone(), Duration::ZERO);
    let flaky = listed[55].name.clone();
    s3.faults.fail(&flaky, 2);
    let server = NasaServer::start(NasaConfig::default(), listed, ring);
    let work = Workdir::new();
    work.write("token.txt", "test-token\n");
    work.write(
        "m.yaml",
        &format!(
            "region: {{ bbox: [146.5, -43.6, 148.2, -42.6] }}\nvariables: [land_segments/canopy/h_canopy]\nsource:\n  cmr:\n    collection: C2613553260-NSIDC_CPRD\n    access: s3\n    token_file: token.txt\n    cmr_url: {}\n    credentials_url: {}/s3credentials\n    s3_endpoint: {}\n    edl_url: {}\noutput: {{ path: out, checkpoint_granules: 10 }}\n",
            server.url, server.url, s3.endpoint, server.edl_url
        ),
    );
    let first = work.run(&["run", "m.yaml"]);
    assert_eq!(first.code(), 2, "{}", first.stderr());
    assert_eq!(s3.faults.remaining(), 0, "the injected faults were not hit");
    let report1 = report(&work, &first.stderr());
    let failed: Vec<String> = report1["granules"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["reason"].as_str().unwrap().is_empty());
            f["granule"].as_str().unwrap().to_string()
        })
        .collect();
    let mut expected: Vec<String> = [10, 40, 70]
        .iter()
        .map(|&i| files[i].file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort();
    assert_eq!(failed_sorted, expected);
    assert_eq!(report1["granules"]["done"], 97, "{}", report1["granules"]);
    assert!(
        report1["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["granule"] == flaky.as_str())
    );
    for name in &failed {
        assert!(
            first.stderr().contains(&format!("failed: {name}: ")),
            "{}",
            first.stderr()
        );
    }

    // The second run reads only the three failed granules.
    let second = work.run(&["run", "m.yaml"]);
    assert_eq!(second.code(), 2, "{}", second.stderr());
    let report2 = report(&work, &second.stderr());
    assert_eq!(report2["granules"]["already_done"], 97);
    assert_eq!(report2["granules"]["done"], 0);
    assert_eq!(report2["granules"]["failed"].as_array().unwrap().len(), 3);

    // Repaired, a third run finishes the dataset: the rows of a clean run.
    for (target, index) in corrupt.iter().zip([10, 40, 70]) {
        std::fs::copy(&files[index], target).unwrap();
    }
    let third = work.run(&["run", "m.yaml"]);
    assert_eq!(third.code(), 0, "{}", third.stderr());
    assert_eq!(report(&work, &third.stderr())["granules"]["done"], 3);
    let clean = Workdir::new();
    clean.write(
        "m.yaml",
        &format!(
            "region: {{ bbox: [146.5, -43.6, 148.2, -42.6] }}\nvariables: [land_segments/canopy/h_canopy]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
            folder.display()
        ),
    );
    clean.run(&["run", "m.yaml"]).success();
    let rows = util::same_rows(&clean.join("out"), &work.join("out"));
    assert!(rows > 1000, "{rows}");
}
