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
            layout: icesat2::synth::Layout::R006,
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
            layout: icesat2::synth::Layout::R006,
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

/// Runs `icesat2 ARGS` in `work` with `env`, under a shell `prefix` (such
/// as a `ulimit`), and fails the test if it has not ended within `seconds`.
fn run_within(
    work: &Workdir,
    prefix: &str,
    args: &[&str],
    env: &[(&str, &str)],
    seconds: u64,
) -> util::Run {
    let command = format!(
        "{prefix} exec \"$0\" \"$@\"",
        prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix};")
        }
    );
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(env!("CARGO_BIN_EXE_icesat2"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(work.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{args:?} still running after {seconds} s: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    util::Run(child.wait_with_output().unwrap())
}

#[test]
fn a_writer_failure_stops_the_run_with_one_line_and_the_next_run_resumes() {
    let granules = granules();
    // One light variable: the granules decode faster than the writer
    // checkpoints, so when it fails the channel is full and the decode
    // threads wait on it (a run used to hang there for ever).
    let light = |work: &Workdir| {
        work.write(
            "m.yaml",
            &format!(
                "region: {{ bbox: [146.0, -44.5, 149.0, -41.5] }}\nvariables: [land_segments/canopy/h_canopy]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out, partition_by: [year, month, beam], checkpoint_granules: 2 }}\n",
                granules.display()
            ),
        );
    };
    let clean = Workdir::new();
    light(&clean);
    clean.run(&["run", "m.yaml", "--threads", "2"]).success();
    // A full disk at the first checkpoint, and the file limit spent at the
    // fifth data file: the run ends at once, with one line naming the
    // cause.
    // And a real limit too low for the run (the kernel's EMFILE).
    for (limit, fault, cause) in [
        ("", "stage:1", "no space left on the device"),
        ("", "open:5", "too many open files (this process may open"),
        (
            "ulimit -n 12",
            "",
            "too many open files (this process may open 12)",
        ),
    ] {
        let work = Workdir::new();
        light(&work);
        let failed = run_within(
            &work,
            limit,
            &["run", "m.yaml", "--threads", "2"],
            &[("ICESAT2_FAIL_AT", fault)],
            60,
        );
        assert_eq!(failed.code(), 1, "{fault}: {}", failed.stderr());
        let last = failed
            .stderr()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("icesat2: output.path: ") && last.contains(cause),
            "{fault}: {last}"
        );
        // Every file a reader sees is whole and committed; the next run
        // resumes to exactly the rows of a clean run.
        let resumed = work.run(&["run", "m.yaml", "--threads", "2"]);
        resumed.success();
        let tally = &report(&work, &resumed.stderr())["granules"];
        assert_eq!(
            tally["done"].as_u64().unwrap() + tally["already_done"].as_u64().unwrap(),
            8,
            "{fault}: {tally}"
        );
        let rows = util::same_rows(&clean.join("out"), &work.join("out"));
        assert!(rows > 1000, "{fault}: {rows}");
    }
}

#[test]
fn a_low_file_limit_is_met_by_closing_files_early() {
    // Every granule, beam and month in a folder of its own (more than 40
    // partitions), all committed at one checkpoint, under a limit of 40
    // open files: the writer closes the files written longest ago.
    let granules = granules();
    let manifest = |work: &Workdir| {
        work.write(
            "m.yaml",
            &format!(
                "region: {{ bbox: [146.0, -44.5, 149.0, -41.5] }}\nvariables: [land_segments/canopy/h_canopy]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out, partition_by: [year, month, rgt, cycle, beam] }}\n",
                granules.display()
            ),
        );
    };
    let clean = Workdir::new();
    manifest(&clean);
    clean.run(&["run", "m.yaml"]).success();
    let folders = visible_files(&clean.join("out"))
        .iter()
        .map(|file| file.parent().unwrap().to_path_buf())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(folders > 40, "{folders} partitions");
    let limited = Workdir::new();
    manifest(&limited);
    let run = run_within(
        &limited,
        "ulimit -n 40",
        &["run", "m.yaml", "--threads", "2"],
        &[],
        60,
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let rows = util::same_rows(&clean.join("out"), &limited.join("out"));
    assert!(rows > 1000, "{rows}");
}

#[test]
fn a_second_run_of_one_worker_is_refused_and_runs_started_together_write_rows_once() {
    let granules = granules();
    let clean = workdir(&granules);
    clean.run(&["run", "m.yaml"]).success();
    // Another process holds the worker's lock: the run is refused at once,
    // naming it, and writes nothing.
    let work = workdir(&granules);
    let locks = work.join("out/_runs/locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(
        locks.join("all.lock"),
        r#"{"run_id":"20260101T000000Z-0000abcd","host":"node-7","pid":4242}"#,
    )
    .unwrap();
    // What an unsharded run holds: its worker's lock and the dataset's.
    let holder: Vec<std::fs::File> = ["all.lock", "dataset.lock"]
        .iter()
        .map(|name| {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(locks.join(name))
                .unwrap();
            // SAFETY: flock on a descriptor the test owns.
            let locked = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            };
            assert_eq!(locked, 0);
            file
        })
        .collect();
    let refused = work.run(&["run", "m.yaml"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    let line = refused.stderr();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("worker 'all' is being written by another icesat2 run")
            && line.contains("20260101T000000Z-0000abcd (pid 4242 on node-7)"),
        "{line}"
    );
    assert!(visible_files(&work.join("out")).is_empty());
    // A shard worker is refused too while an unsharded run writes.
    let shard = work.run(&["run", "m.yaml", "--shard", "0/2"]);
    assert_eq!(shard.code(), 1, "{}", shard.stderr());
    assert!(
        shard
            .stderr()
            .contains("the dataset is being written by an unsharded icesat2 run"),
        "{}",
        shard.stderr()
    );
    drop(holder);

    // Three runs of one manifest started together: whichever order they
    // take, every row is written exactly once.
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"))
                .args(["run", "m.yaml", "--threads", "1"])
                .current_dir(work.path())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match output.status.code() {
            Some(0) => {}
            Some(1) => assert!(
                stderr.contains("being written by another icesat2 run"),
                "{stderr}"
            ),
            other => panic!("{other:?}: {stderr}"),
        }
    }
    work.run(&["run", "m.yaml"]).success();
    let rows = util::same_rows(&clean.join("out"), &work.join("out"));
    assert!(rows > 1000, "{rows}");
}

#[test]
fn fresh_removes_only_what_the_journal_names_and_an_interrupted_fresh_finishes() {
    let granules = granules();
    let work = workdir(&granules);
    work.run(&["run", "m.yaml"]).success();
    let ours = visible_files(&work.join("out"));
    // Files no run wrote: a foreign hive folder, a part file at the top,
    // a file inside one of our partition folders, a plain file.
    let foreign = [
        "out/other=1/part-0.parquet",
        "out/part-foreign.parquet",
        "out/year=2019/month=04/notes.txt",
        "out/notes.txt",
    ];
    for file in foreign {
        work.write(file, "not ours");
    }
    let fresh = work.run(&["run", "m.yaml", "--fresh"]);
    fresh.success();
    assert_eq!(report(&work, &fresh.stderr())["granules"]["done"], 8);
    for file in foreign {
        assert_eq!(
            std::fs::read_to_string(work.join(file)).unwrap(),
            "not ours",
            "{file}"
        );
    }
    let after = visible_files(&work.join("out"));
    assert!(ours.iter().all(|file| !after.contains(file)), "{after:?}");
    // One report: the earlier run's went with its dataset.
    let reports = std::fs::read_dir(work.join("out/_runs"))
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .count();
    assert_eq!(reports, 1);

    // A --fresh killed part way (some files moved aside, the journal
    // still there): the next run, even without --fresh, finishes the
    // removal and reads every granule again, instead of trusting a journal
    // whose files are gone.
    let killed = work.run_with_env(
        &["run", "m.yaml", "--fresh"],
        &[("ICESAT2_KILL_AT", "remove:3")],
    );
    assert_eq!(killed.signal(), Some(9), "{}", killed.stderr());
    assert!(work.join("out/_runs/.removing.json").is_file());
    let next = work.run(&["run", "m.yaml"]);
    next.success();
    assert!(
        next.stderr().contains("interrupted --fresh"),
        "{}",
        next.stderr()
    );
    assert_eq!(report(&work, &next.stderr())["granules"]["done"], 8);
    // The foreign files are still there; without them, the dataset holds
    // the rows of a clean run.
    for file in foreign {
        assert_eq!(
            std::fs::read_to_string(work.join(file)).unwrap(),
            "not ours",
            "{file}"
        );
        std::fs::remove_file(work.join(file)).unwrap();
    }
    let clean = workdir(&granules);
    clean.run(&["run", "m.yaml"]).success();
    let rows = util::same_rows(&clean.join("out"), &work.join("out"));
    assert!(rows > 1000, "{rows}");
}

#[test]
fn a_journal_record_naming_a_path_outside_the_dataset_is_refused() {
    let granules = granules();
    let work = workdir(&granules);
    work.run(&["run", "m.yaml"]).success();
    let staged = "20260101T000000Z-0000abcd-all-000000.parquet.staged";
    work.write(&format!("out/_runs/staging/{staged}"), "bytes");
    work.write(
        "out/_runs/journal/20260101T000000Z-0000abcd-all-000000.json",
        &serde_json::json!({
            "run_id": "20260101T000000Z-0000abcd",
            "worker": "all",
            "sequence": 0,
            "manifest_sha256": "x",
            "granules": [],
            "files": [{ "staged": staged, "path": "../escaped/part-x.parquet", "rows": 1, "bytes": 5 }],
        })
        .to_string(),
    );
    let run = work.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains(
            "journal record names '../escaped/part-x.parquet', which is not a file of the dataset"
        ),
        "{}",
        run.stderr()
    );
    assert!(!work.join("escaped").exists());
    assert!(work.join(&format!("out/_runs/staging/{staged}")).is_file());
    // --fresh refuses it too rather than guess what the record holds.
    let fresh = work.run(&["run", "m.yaml", "--fresh"]);
    assert_eq!(fresh.code(), 1, "{}", fresh.stderr());
    assert!(!work.join("escaped").exists());
}

#[test]
fn a_committed_file_that_is_gone_makes_its_granules_read_again_without_duplicates() {
    let granules = granules();
    let clean = workdir(&granules);
    clean.run(&["run", "m.yaml"]).success();
    let work = workdir(&granules);
    work.run(&["run", "m.yaml"]).success();
    let files = visible_files(&work.join("out"));
    std::fs::remove_file(&files[files.len() / 2]).unwrap();
    let again = work.run(&["run", "m.yaml"]);
    again.success();
    assert!(
        again.stderr().contains("named files that are gone"),
        "{}",
        again.stderr()
    );
    let tally = &report(&work, &again.stderr())["granules"];
    assert!(tally["done"].as_u64().unwrap() >= 1, "{tally}");
    let rows = util::same_rows(&clean.join("out"), &work.join("out"));
    assert!(rows > 1000, "{rows}");
}

#[test]
fn an_s3_output_takes_a_lease_and_refuses_fresh_at_a_bucket_root() {
    let granules = granules();
    let clean = workdir(&granules);
    clean.run(&["run", "m.yaml"]).success();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("results")).unwrap();
    let ring = KeyRing::default();
    let s3 = S3Server::start(root.path(), ring.clone(), Duration::ZERO);
    let (key, secret) = ring.issue(Duration::from_secs(3600));
    let env = [
        ("AWS_ACCESS_KEY_ID", key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_ENDPOINT", s3.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-west-2"),
    ];
    let work = Workdir::new();
    let manifest = |path: &str| {
        format!(
            "region: {{ bbox: [146.0, -44.5, 149.0, -41.5] }}\nvariables: [land_segments/canopy/h_canopy, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: {path}, partition_by: [year, month, beam], checkpoint_granules: 2 }}\n",
            granules.display()
        )
    };
    work.write("m.yaml", &manifest("s3://results/ds"));
    work.write("root.yaml", &manifest("s3://results"));
    // A lease another run renewed a moment ago: refused, naming it.
    let lease = root.path().join("results/ds/_runs/locks/all.json");
    let holder = |renewed: chrono::DateTime<chrono::Utc>| {
        serde_json::json!({ "run_id": "20260101T000000Z-0000abcd", "host": "node-7", "pid": 4242, "renewed": renewed })
            .to_string()
    };
    std::fs::create_dir_all(lease.parent().unwrap()).unwrap();
    std::fs::write(&lease, holder(chrono::Utc::now())).unwrap();
    let refused = work.run_with_env(&["run", "m.yaml"], &env);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused
            .stderr()
            .contains("worker 'all' is being written by another icesat2 run, run 20260101T000000Z-0000abcd (pid 4242 on node-7)"),
        "{}",
        refused.stderr()
    );
    // A lease not renewed for two minutes (its run was killed) is taken
    // over; the run gives it back when it ends.
    std::fs::write(
        &lease,
        holder(chrono::Utc::now() - chrono::Duration::seconds(120)),
    )
    .unwrap();
    let run = work.run_with_env(&["run", "m.yaml"], &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(!lease.exists());
    let rows = util::same_rows(&clean.join("out"), &root.path().join("results/ds"));
    assert!(rows > 1000, "{rows}");
    // --fresh at a bucket's root is refused before anything is removed.
    let fresh = work.run_with_env(&["run", "root.yaml", "--fresh"], &env);
    assert_eq!(fresh.code(), 1, "{}", fresh.stderr());
    assert!(
        fresh.stderr().contains("is a bucket's root"),
        "{}",
        fresh.stderr()
    );
    assert_eq!(
        util::same_rows(&clean.join("out"), &root.path().join("results/ds")),
        rows
    );
}

/// A manifest over the notebook area's four granules with time window
/// `time`, variables `variables`, writing into `out`.
fn growing_manifest(granules: &Path, time: &str, variables: &str) -> String {
    format!(
        "time: {time}\nregion: {{ bbox: [147.2, -43.35, 147.55, -42.95] }}\nvariables: [{variables}]\nsource: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
        granules.display()
    )
}

#[test]
fn a_dataset_grows_by_its_time_window_to_the_rows_of_a_fresh_run() {
    let granules = util::tasmania_granules();
    let variables = "land_segments/canopy/h_canopy, signal_photons/ph_h";
    // The first window starts and ends inside granules (their rows near the
    // region span 2019-04-21T21:32:39..45 and 2019-07-19T09:17:50..56).
    let narrow = "{ start: \"2019-04-21T21:32:42Z\", end: \"2019-07-19T09:17:53Z\" }";
    let wide = "{ start: 2019-01-01, end: 2019-12-31 }";
    let work = Workdir::new();
    work.write("m.yaml", &growing_manifest(&granules, narrow, variables));
    work.run(&["run", "m.yaml"]).success();
    let first = super::pipeline::read_report(&work.join("out"));
    assert!(first.rows_written > 0);

    work.write("m.yaml", &growing_manifest(&granules, wide, variables));
    let grown = work.run(&["run", "m.yaml"]);
    grown.success();
    assert!(
        grown
            .stderr()
            .contains("growing the dataset's time window: 2 granules"),
        "{}",
        grown.stderr()
    );

    let fresh = Workdir::new();
    fresh.write("m.yaml", &growing_manifest(&granules, wide, variables));
    fresh.run(&["run", "m.yaml"]).success();
    let rows = util::same_rows(&work.join("out"), &fresh.join("out"));
    assert!(rows > first.rows_written, "{rows} rows");

    // Once more: nothing new, nothing read.
    let again = work.run(&["run", "m.yaml"]);
    again.success();
    assert!(
        again.stderr().contains("4 already done"),
        "{}",
        again.stderr()
    );
    assert_eq!(util::same_rows(&work.join("out"), &fresh.join("out")), rows);

    // A file of the first (narrow) record gone: that record is undone, and
    // with it the record holding the straddling granule's other rows, so
    // the granule is read again whole.
    let journal = work.join("out/_runs/journal");
    let mut records: Vec<serde_json::Value> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|entry| {
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    records.sort_by_key(|record| record["window"][0].as_i64());
    let narrow_record = records.last().unwrap();
    let file = narrow_record["files"][0]["path"].as_str().unwrap();
    std::fs::remove_file(work.join("out").join(file)).unwrap();
    let undone = work.run(&["run", "m.yaml"]);
    undone.success();
    assert_eq!(util::same_rows(&work.join("out"), &fresh.join("out")), rows);

    // A narrower window, or another variable, is not growth.
    let narrower = "{ start: 2019-05-01, end: 2019-12-31 }";
    work.write("m.yaml", &growing_manifest(&granules, narrower, variables));
    let refused = work.run(&["run", "m.yaml"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused
            .stderr()
            .contains("which this manifest's [2019-05-01T00:00:00Z, 2019-12-31T23:59:59.999999Z] does not contain"),
        "{}",
        refused.stderr()
    );
    work.write(
        "m.yaml",
        &growing_manifest(&granules, wide, "land_segments/canopy/h_canopy"),
    );
    let refused = work.run(&["run", "m.yaml"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("region, variables, filters"),
        "{}",
        refused.stderr()
    );
    assert_eq!(util::same_rows(&work.join("out"), &fresh.join("out")), rows);
}

/// The four notebook-area granules copied into `folder`, plus, when
/// `second` is given, a copy of that granule as revision `_02`.
fn revisions(folder: &Path, second: Option<&str>) {
    std::fs::create_dir_all(folder).unwrap();
    for entry in std::fs::read_dir(util::tasmania_granules()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::copy(&path, folder.join(&name)).unwrap();
        if second.is_some_and(|wanted| wanted == name) {
            std::fs::copy(&path, folder.join(name.replace("_01.h5", "_02.h5"))).unwrap();
        }
    }
}

#[test]
fn a_newer_revision_replaces_its_granule_in_one_commit_and_every_row_stays_once() {
    let old = "ATL08_20190421213054_03750313_006_01.h5";
    let manifest = "region: { bbox: [147.2, -43.35, 147.55, -42.95] }\nvariables: [land_segments/canopy/h_canopy]\nupdate: newer_revisions\nsource: { local: { path: granules } }\noutput: { path: out, checkpoint_granules: 2 }\n";
    // The dataset, then the same folder with a `_02` of one granule: a run
    // killed after committing the replacement, part way through retiring
    // the old records, then resumed; and an uninterrupted one.
    let fresh = Workdir::new();
    revisions(&fresh.join("granules"), Some(old));
    fresh.write("m.yaml", manifest);
    fresh.run(&["run", "m.yaml"]).success();
    for kill in [None, Some("retire:1"), Some("publish:1")] {
        let work = Workdir::new();
        revisions(&work.join("granules"), None);
        work.write("m.yaml", manifest);
        work.run(&["run", "m.yaml"]).success();
        revisions(&work.join("granules"), Some(old));
        if let Some(kill) = kill {
            let run = work.run_with_env(&["run", "m.yaml"], &[("ICESAT2_KILL_AT", kill)]);
            assert_eq!(run.signal(), Some(9), "{kill}: {}", run.stderr());
        }
        let run = work.run(&["run", "m.yaml"]);
        run.success();
        if kill.is_none() {
            assert!(
                run.stderr()
                    .contains(&format!("{old} -> {}", old.replace("_01.h5", "_02.h5"))),
                "{}",
                run.stderr()
            );
        }
        let rows = util::same_rows(&work.join("out"), &fresh.join("out"));
        assert!(rows > 1000, "{kill:?}: {rows}");
        // Only the newest revision's rows, and the next run reads nothing.
        let again = work.run(&["run", "m.yaml"]);
        again.success();
        assert!(again.stderr().contains("0 done"), "{}", again.stderr());
        assert_eq!(util::same_rows(&work.join("out"), &fresh.join("out")), rows);
    }
}

#[test]
fn without_update_a_newer_revision_is_skipped_and_sharded_runs_do_not_replace() {
    let old = "ATL08_20190421213054_03750313_006_01.h5";
    let work = Workdir::new();
    revisions(&work.join("granules"), None);
    let manifest = |update: &str| {
        format!(
            "region: {{ bbox: [147.2, -43.35, 147.55, -42.95] }}\nvariables: [land_segments/canopy/h_canopy]\n{update}source: {{ local: {{ path: granules }} }}\noutput: {{ path: out }}\n"
        )
    };
    work.write("m.yaml", &manifest(""));
    work.run(&["run", "m.yaml"]).success();
    revisions(&work.join("granules"), Some(old));
    let kept = work.run(&["run", "m.yaml"]);
    kept.success();
    assert!(kept.stderr().contains("0 done"), "{}", kept.stderr());
    work.write("m.yaml", &manifest("update: newer_revisions\n"));
    let refused = work.run(&["run", "m.yaml", "--shard", "0/1"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused
            .stderr()
            .contains("update: newer_revisions: replacing granules needs a run without --shard"),
        "{}",
        refused.stderr()
    );
}

#[test]
fn a_replacement_whose_new_revision_fails_keeps_the_old_rows_and_the_rest_of_the_run() {
    let old = "ATL08_20190421213054_03750313_006_01.h5";
    let new = old.replace("_01.h5", "_02.h5");
    let manifest = "region: { bbox: [147.2, -43.35, 147.55, -42.95] }\nvariables: [land_segments/canopy/h_canopy]\nupdate: newer_revisions\nsource: { local: { path: granules } }\noutput: { path: out, checkpoint_granules: 2 }\n";
    let work = Workdir::new();
    revisions(&work.join("granules"), None);
    // Three granules first; the fourth comes with the broken revision.
    let held_back = "ATL08_20190721213054_03750413_006_01.h5";
    std::fs::rename(work.join("granules").join(held_back), work.join(held_back)).unwrap();
    work.write("m.yaml", manifest);
    work.run(&["run", "m.yaml"]).success();
    std::fs::rename(work.join(held_back), work.join("granules").join(held_back)).unwrap();
    work.write(&format!("granules/{new}"), "not an HDF5 file");
    let run = work.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    // The old revision's rows stay and the new granule of the run is in.
    let all = Workdir::new();
    all.write("m.yaml", manifest);
    revisions(&all.join("granules"), None);
    all.run(&["run", "m.yaml"]).success();
    util::same_rows(&work.join("out"), &all.join("out"));

    // With the revision readable, the next run replaces.
    std::fs::copy(
        util::tasmania_granules().join(old),
        work.join("granules").join(&new),
    )
    .unwrap();
    work.run(&["run", "m.yaml"]).success();
    let fresh = Workdir::new();
    revisions(&fresh.join("granules"), Some(old));
    fresh.write("m.yaml", manifest);
    fresh.run(&["run", "m.yaml"]).success();
    util::same_rows(&work.join("out"), &fresh.join("out"));
}
