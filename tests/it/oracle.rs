//! Our production reader against libhdf5, byte for byte, on every dataset of
//! the real granules and of synthetic ones.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use icesat2::granule::libhdf5::LibHdf5File;
use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{Hdf5Source, Node};
use icesat2::store;

use super::util;

/// Walks the file with libhdf5 and checks that every group lists the same
/// members, every dataset has the same type, shape, chunks and `_FillValue`,
/// and reads (whole, and by row runs across chunk boundaries) give the same
/// bytes. Returns the number of datasets compared.
fn compare(path: &Path) -> usize {
    let ours = ReaderFile::open(Arc::new(store::open_local(path).unwrap())).unwrap();
    let oracle = LibHdf5File::open(path).unwrap();
    let mut groups = vec!["/".to_string()];
    let mut n_datasets = 0;
    while let Some(group) = groups.pop() {
        let members = oracle.members(&group).unwrap();
        assert_eq!(
            ours.members(&group).unwrap(),
            members,
            "{}: members of {group}",
            path.display()
        );
        for name in [
            "atlas_beam_type",
            "atlas_spot_number",
            "sc_orientation",
            "groundtrack_id",
        ] {
            assert_eq!(
                ours.attr_text(&group, name).unwrap(),
                oracle.attr_text(&group, name).unwrap(),
                "{group}@{name}"
            );
        }
        for member in members {
            let child = if group == "/" {
                format!("/{member}")
            } else {
                format!("{group}/{member}")
            };
            let node = oracle.node(&child).unwrap();
            assert_eq!(ours.node(&child).unwrap(), node, "{child}");
            match node {
                Node::Group => groups.push(child),
                Node::Dataset => {
                    compare_dataset(&ours, &oracle, &child);
                    n_datasets += 1;
                }
                Node::Missing => panic!("{child} listed but missing"),
            }
        }
    }
    n_datasets
}

fn compare_dataset(ours: &ReaderFile, oracle: &LibHdf5File, path: &str) {
    let info = oracle.dataset(path).unwrap();
    assert_eq!(ours.dataset(path).unwrap(), info, "{path}: description");
    if info.dtype.is_none() {
        if info.type_name == "string" {
            assert_eq!(
                ours.read_strings(path).unwrap(),
                oracle.read_strings(path).unwrap(),
                "{path}: strings"
            );
        }
        return;
    }
    let n = info.n_rows();
    let mut runs: Vec<Vec<Range<u64>>> = vec![vec![0..n]];
    if n > 2 {
        runs.push(vec![0..1, n / 2..(n / 2 + 7).min(n), n - 1..n]);
    }
    if n > 10_005 {
        runs.push(vec![9_995..10_005, 10_010..10_011]);
    }
    for run in runs {
        let expected = oracle.read_runs(path, &run).unwrap();
        let actual = ours.read_runs(path, &run).unwrap();
        assert_eq!(actual.dtype(), expected.dtype(), "{path} {run:?}");
        assert!(
            actual.to_le_bytes() == expected.to_le_bytes(),
            "{path} {run:?}: bytes differ"
        );
    }
}

#[test]
fn real_release_004_granule_reads_like_libhdf5() {
    let path = util::shared_file("real/processed_ATL08_20200821122613_08730802_004_01.h5");
    let n = compare(&path);
    assert!(n > 400, "{n} datasets");
}

#[test]
fn real_release_006_clip_without_attributes_reads_like_libhdf5() {
    let path = util::shared_file("real/ATL08_release006_clip_gt1r.h5");
    let n = compare(&path);
    assert!(n > 90, "{n} datasets");
}

#[test]
fn synthetic_granules_read_like_libhdf5() {
    let options = icesat2::synth::SynthOptions {
        granules: 3,
        seed: 11,
        near: None,
        segments: 10_500,
        photons: true,
        bare_beams: vec!["gt3r".into()],
        layout: icesat2::synth::Layout::R006,
    };
    let folder = util::synthetic("oracle-3x10500", &options);
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    for file in files {
        let n = compare(&file);
        assert!(n > 400, "{}: {n} datasets", file.display());
    }
}

#[test]
fn release_007_layout_granules_read_like_libhdf5() {
    // Written by libhdf5 in the release-007 layout (`synth --layout r007`).
    let options = icesat2::synth::SynthOptions {
        granules: 1,
        seed: 13,
        near: None,
        segments: 10_500,
        photons: true,
        bare_beams: vec![],
        layout: icesat2::synth::Layout::R007,
    };
    let folder = util::synthetic("oracle-r007-1x10500", &options);
    let written = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        written.to_string_lossy().ends_with("_007_01.h5"),
        "{}",
        written.display()
    );
    // A real granule and a synthetic one of release 006, rewritten by
    // h5repack into that layout.
    let repacked = [
        util::release_007_layout(&util::shared_file(
            "real/processed_ATL08_20200821122613_08730802_004_01.h5",
        )),
        util::release_007_layout(
            &util::tasmania_granules().join(first_file(&util::tasmania_granules())),
        ),
    ];
    for file in std::iter::once(&written).chain(&repacked) {
        let creation = hdf5::File::open(file).unwrap().fcpl().unwrap();
        assert_eq!(
            creation.file_space_page_size(),
            8 << 20,
            "{}",
            file.display()
        );
        assert!(
            matches!(
                creation.file_space_strategy(),
                hdf5::file::FileSpaceStrategy::FreeSpaceManager { paged: true, .. }
            ),
            "{}: {:?}",
            file.display(),
            creation.file_space_strategy()
        );
        let n = compare(file);
        assert!(n > 100, "{}: {n} datasets", file.display());
    }
}

fn first_file(folder: &Path) -> std::ffi::OsString {
    let mut names: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names.remove(0)
}
