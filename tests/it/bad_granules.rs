//! A corpus of bad granules (`tests/python/bad_granules.py` breaks copies of
//! a good synthetic granule in seventeen ways, through h5py or by patching
//! the bytes of its B-trees): each fails alone with a one-line reason
//! naming the problem, the good granule beside them is written whole,
//! nothing panics or aborts on allocation, `inspect` exits 1 with one line
//! on those that cannot be opened, and the same reasons come when the bytes
//! are read as remote ranges. Also: the read budget counts every read of a
//! granule, and `inspect` refuses a group that is its own descendant.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use icesat2::granule::reader::{Prefetch, ReaderFile};
use icesat2::granule::{self, GranuleError, Hdf5Source, Request};
use icesat2::region::Region;
use icesat2::store::remote::{RangeSource, RemoteStorage};
use icesat2::store::{self, StoreError};

use super::util::{Workdir, python_script, tasmania_granules};

/// The benchmarks' request builder (every beam, no filters).
#[path = "../../benches/support/request.rs"]
mod support;

/// Kind of breakage -> words the failure reason must contain.
const EXPECTED: [(&str, &[&str]); 17] = [
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
    ("no-longitude", &["gt3r/land_segments has no longitude"]),
    (
        "shapes-disagree",
        &["gt2l/land_segments/longitude has shape", "rows"],
    ),
    (
        "inflates-beyond-chunk",
        &["/gt1r/land_segments/latitude", "decoded to more than"],
    ),
    (
        "huge-shape",
        &[
            "/gt1l/land_segments/latitude",
            "100000000000 rows",
            "read budget of 512 MiB",
        ],
    ),
    (
        "btree-node-entries",
        &[
            "/gt2r/land_segments/latitude",
            "claims 65535 entries",
            "in chunks of [10000] holds 1 chunk",
        ],
    ),
    (
        "btree-node-beyond-k",
        &[
            "/gt1r/land_segments/latitude",
            "claims 65535 entries",
            "a node of this file holds at most 64",
        ],
    ),
    (
        "btree-more-chunks",
        &[
            "/gt3l/land_segments/latitude",
            "the chunk B-tree lists more than",
            "in chunks of [4] holds",
        ],
    ),
    (
        "group-btree-repeats",
        &["group /gt3r/land_segments", "symbol table node at", "twice"],
    ),
];

/// The good granule and the corpus made from it in `folder`, by file name.
fn corpus(folder: &Path) -> (PathBuf, BTreeMap<String, String>) {
    let good = std::fs::read_dir(tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    std::fs::create_dir_all(folder).unwrap();
    let listing = python_script(
        "bad_granules.py",
        &[good.to_str().unwrap(), folder.to_str().unwrap()],
    );
    let kinds: BTreeMap<String, String> = listing
        .lines()
        .map(|line| {
            let (name, kind) = line.split_once(' ').unwrap();
            (name.to_string(), kind.to_string())
        })
        .collect();
    assert_eq!(kinds.len(), EXPECTED.len(), "{listing}");
    (good, kinds)
}

fn words(kind: &str) -> &'static [&'static str] {
    EXPECTED.iter().find(|(k, _)| *k == kind).unwrap().1
}

#[test]
fn each_bad_granule_fails_alone_with_a_reason_naming_the_problem() {
    let dir = Workdir::new();
    let (good, kinds) = corpus(&dir.join("granules"));
    std::fs::copy(&good, dir.join("granules").join(good.file_name().unwrap())).unwrap();

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
        for word in words(kind) {
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

/// Granule bytes in memory, served by ranges as a remote store would.
struct Memory(bytes::Bytes);

#[async_trait::async_trait]
impl RangeSource for Memory {
    async fn get_range(&self, range: Range<u64>) -> Result<bytes::Bytes, StoreError> {
        Ok(self.0.slice(range.start as usize..range.end as usize))
    }

    async fn size(&self) -> Result<u64, StoreError> {
        Ok(self.0.len() as u64)
    }

    fn label(&self) -> String {
        "memory".into()
    }
}

/// Decodes a granule as a run over remote storage does: the head fetched
/// on open, the metadata preloaded level by level, planned chunks
/// prefetched. Gives the rows.
fn decode_remote(bytes: Vec<u8>, name: &str, request: &Request) -> Result<usize, GranuleError> {
    Ok(extract_remote(bytes, name, request)?.batch.num_rows())
}

/// `decode_remote`, giving what was extracted.
fn extract_remote(
    bytes: Vec<u8>,
    name: &str,
    request: &Request,
) -> Result<granule::Extracted, GranuleError> {
    let storage = Arc::new(
        RemoteStorage::open(
            Arc::new(Memory(bytes.into())),
            store::runtime().handle().clone(),
            store::remote::HEAD,
        )
        .map_err(|err| GranuleError::Invalid(err.to_string()))?,
    );
    let prefetch: Arc<dyn Prefetch> = storage.clone();
    let file = ReaderFile::open_with_prefetch(storage, Some(prefetch))?;
    granule::preload(&file, request);
    let meta = granule::granule_meta(&file, name)?;
    granule::extract(&file, name, meta, request)
}

#[test]
fn bad_granules_fail_alike_over_remote_ranges() {
    let dir = Workdir::new();
    let (good, kinds) = corpus(&dir.join("granules"));
    let request = support::request(
        Region::from_bbox([-180.0, -89.0, 180.0, 89.0], "world").unwrap(),
        &[
            "land_segments/canopy/h_canopy",
            "land_segments/terrain/h_te_best_fit",
        ],
    );
    let good_name = good.file_name().unwrap().to_str().unwrap();
    let rows = decode_remote(std::fs::read(&good).unwrap(), good_name, &request).unwrap();
    assert!(rows > 1000, "{rows}");
    for (name, kind) in &kinds {
        let bytes = std::fs::read(dir.join("granules").join(name)).unwrap();
        let reason = match decode_remote(bytes, name, &request) {
            Ok(rows) => panic!("{kind} ({name}) gave {rows} rows"),
            Err(err) => err.to_string(),
        };
        for word in words(kind) {
            assert!(reason.contains(word), "{kind}: '{reason}' lacks '{word}'");
        }
    }
}

#[test]
fn beams_a_clip_tool_left_empty_read_alike_locally_and_over_remote_ranges() {
    // gt1l and gt2r as ICESat2VegR writes beams with no segments: groups
    // without datasets. Read as beams without land segments; the others
    // give the same rows either way.
    let dir = Workdir::new();
    let good = std::fs::read_dir(tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(&good, source.join(good.file_name().unwrap())).unwrap();
    let out = dir.join("bare");
    python_script(
        "other_tools.py",
        &[
            "bare",
            source.to_str().unwrap(),
            out.to_str().unwrap(),
            "gt1l,gt2r",
        ],
    );
    let name = good.file_name().unwrap().to_str().unwrap();
    let path = out.join(name);
    let request = support::request(
        Region::from_bbox([-180.0, -89.0, 180.0, 89.0], "world").unwrap(),
        &["land_segments/canopy/h_canopy", "signal_photons/ph_h"],
    );
    let local = ReaderFile::open(Arc::new(store::open_local(&path).unwrap())).unwrap();
    let meta = granule::granule_meta(&local, name).unwrap();
    let local = granule::extract(&local, name, meta, &request).unwrap();
    let remote = extract_remote(std::fs::read(&path).unwrap(), name, &request).unwrap();
    assert_eq!(local.batch, remote.batch);
    assert_eq!(local.beams, remote.beams);
    let segments: Vec<(&str, u64)> = local
        .beams
        .iter()
        .map(|count| (count.beam.as_str(), count.segments))
        .collect();
    assert_eq!(segments.len(), 6, "{segments:?}");
    for (beam, n) in segments {
        assert_eq!(n == 0, beam == "gt1l" || beam == "gt2r", "{beam}: {n}");
    }
    let rows: u64 = local.beams.iter().map(|count| count.kept).sum();
    assert!(
        rows > 1000 && rows == local.batch.num_rows() as u64,
        "{rows}"
    );
}

#[test]
// Row runs are slices of ranges; a one-run read is written `&[0..n]`.
#[allow(clippy::single_range_in_vec_init)]
fn the_read_budget_counts_every_read_of_a_granule() {
    let good = std::fs::read_dir(tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    let open = || ReaderFile::open(Arc::new(store::open_local(&good).unwrap())).unwrap();
    let latitude = "/gt1l/land_segments/latitude";
    let longitude = "/gt1l/land_segments/longitude";
    let info = open().dataset(latitude).unwrap();
    let rows = info.n_rows();
    let bytes = rows * info.dtype.unwrap().size() as u64;
    assert!(rows > 100, "{rows}");

    // Latitude and longitude whole take twice `bytes`: one byte less
    // refuses the second read, whichever dataset it is.
    let file = open().with_read_budget(2 * bytes - 1);
    assert_eq!(
        file.read_runs(latitude, &[0..rows]).unwrap().len() as u64,
        rows
    );
    let err = file
        .read_runs(longitude, &[0..rows])
        .unwrap_err()
        .to_string();
    for word in [
        longitude,
        &format!("reading {rows} rows ({bytes} bytes)"),
        &format!("read budget of {} bytes", 2 * bytes - 1),
        &format!("({bytes} bytes read before)"),
    ] {
        assert!(err.contains(word), "'{err}' lacks '{word}'");
    }
    // The refused read took nothing: a smaller one still fits, and reads
    // in runs count their rows only.
    let part = file.read_runs(longitude, &[0..10, 20..30]).unwrap();
    assert_eq!(part.len(), 20);
    // Exactly the budget is allowed.
    let file = open().with_read_budget(2 * bytes);
    file.read_runs(latitude, &[0..rows]).unwrap();
    file.read_runs(longitude, &[0..rows]).unwrap();
    assert!(file.read_runs(latitude, &[0..1]).is_err());
}

#[test]
fn inspect_refuses_a_group_that_is_its_own_descendant() {
    let dir = Workdir::new();
    let good = std::fs::read_dir(tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    let name = good.file_name().unwrap().to_str().unwrap();
    let looped = dir.join(name);
    std::fs::copy(&good, &looped).unwrap();
    {
        let file = hdf5::File::open_rw(&looped).unwrap();
        // A hard link to gt2l's land_segments inside its own canopy group.
        file.link_hard("/gt2l/land_segments", "/gt2l/land_segments/canopy/back")
            .unwrap();
    }
    let inspect = dir.run(&["inspect", name]);
    let message = inspect.stderr();
    assert_eq!(inspect.code(), 1, "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    for word in [
        name,
        "group /gt2l/land_segments/canopy/back is group /gt2l/land_segments again",
        "hard link cycle",
    ] {
        assert!(message.contains(word), "'{message}' lacks '{word}'");
    }
    // Without the link, the same granule is walked whole.
    let run = dir.run(&["inspect", good.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
}
