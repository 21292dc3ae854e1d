//! A corpus of bad granules (`tests/python/bad_granules.py` breaks copies of
//! a good synthetic granule in twelve ways): each fails alone with a
//! one-line reason naming the problem, the good granule beside them is
//! written whole, nothing panics, and `inspect` exits 1 with one line on
//! those that cannot be opened.

use std::collections::BTreeMap;

use super::util::{Workdir, python_script, tasmania_granules};

/// Kind of breakage -> words the failure reason must contain.
const EXPECTED: [(&str, &[&str]); 12] = [
    ("truncated-half", &["truncated", "superblock says"]),
    ("truncated-metadata", &["truncated", "6000 bytes"]),
    (
        "truncated-superblock",
        &["not a readable HDF5 file", "end of data"],
    ),
    ("zeroed-superblock", &["not a readable HDF5 file", "magic"]),
    (
        "corrupt-chunk",
        &["/gt1l/land_segments/latitude", "decompression"],
    ),
    ("not-atl08", &["not an ATL08 granule", "gt1l"]),
    ("empty", &["empty (0 bytes)"]),
    ("text", &["text file, not HDF5", "<html>"]),
    ("no-latitude", &["gt1l/land_segments has no latitude"]),
    (
        "shapes-disagree",
        &["gt2l/land_segments/longitude has shape", "rows"],
    ),
    (
        "inflates-beyond-chunk",
        &["/gt1r/land_segments/latitude", "decoded to"],
    ),
    (
        "huge-shape",
        &["/gt1l/land_segments/latitude", "read limit"],
    ),
];

#[test]
fn each_bad_granule_fails_alone_with_a_reason_naming_the_problem() {
    let dir = Workdir::new();
    let good = std::fs::read_dir(tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    std::fs::create_dir_all(dir.join("granules")).unwrap();
    std::fs::copy(&good, dir.join("granules").join(good.file_name().unwrap())).unwrap();
    let listing = python_script(
        "bad_granules.py",
        &[
            good.to_str().unwrap(),
            dir.join("granules").to_str().unwrap(),
        ],
    );
    let kinds: BTreeMap<String, String> = listing
        .lines()
        .map(|line| {
            let (name, kind) = line.split_once(' ').unwrap();
            (name.to_string(), kind.to_string())
        })
        .collect();
    assert_eq!(kinds.len(), EXPECTED.len(), "{listing}");

    dir.write(
        "m.yaml",
        r#"region: { bbox: [-180, -89, 180, 89] }
variables: [land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit]
source: { local: { path: granules } }
output: { path: out }
"#,
    );
    let run = dir.run(&["run", "m.yaml"]);
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");

    let report_path = stderr
        .lines()
        .find_map(|line| line.split("report ").nth(1))
        .unwrap()
        .trim();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(report_path)).unwrap())
            .unwrap();
    assert_eq!(report["granules"]["done"], 1);
    let failed: BTreeMap<String, String> = report["granules"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| {
            (
                note["granule"].as_str().unwrap().to_string(),
                note["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(failed.len(), EXPECTED.len(), "{failed:#?}");
    for (name, kind) in &kinds {
        let reason = failed
            .get(name)
            .unwrap_or_else(|| panic!("{kind} ({name}) did not fail"));
        let words = EXPECTED.iter().find(|(k, _)| k == kind).unwrap().1;
        for word in words {
            assert!(reason.contains(word), "{kind}: '{reason}' lacks '{word}'");
        }
        assert!(!reason.contains('\n'), "{kind}: {reason}");
        // The run's one line per failure on stderr too.
        assert!(
            stderr.contains(&format!("failed: {name}: {reason}")),
            "{stderr}"
        );
    }

    // The good granule's rows, and no partial or staged file where a reader looks.
    let count = dir.run(&[
        "query",
        "out",
        "select count(*) from segments",
        "--format",
        "csv",
    ]);
    let rows: u64 = count
        .success()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rows > 1000, "{rows}");
    let mut visible = Vec::new();
    let mut folders = vec![dir.join("out")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else {
                visible.push(name);
            }
        }
    }
    assert!(
        visible.iter().all(|name| name.ends_with(".parquet")),
        "{visible:?}"
    );

    // Opening alone: inspect names the problem in one line, exit 1.
    for (name, kind) in &kinds {
        if !["empty", "text", "zeroed-superblock", "truncated-half"].contains(&kind.as_str()) {
            continue;
        }
        let inspect = dir.run(&["inspect", &format!("granules/{name}")]);
        assert_eq!(inspect.code(), 1, "{kind}");
        let message = inspect.stderr();
        assert_eq!(message.lines().count(), 1, "{kind}: {message}");
        assert!(message.contains(name.as_str()), "{kind}: {message}");
    }
}
