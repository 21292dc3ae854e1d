//! Shared helpers: a temporary work folder that runs the real binary, the
//! Python interpreter with the reference libraries, shared reference data,
//! and cached synthetic granules.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary folder in which the `icesat2` binary runs.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("icesat2-test-")
                .tempdir()
                .expect("temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a file under the work folder (creating folders).
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Runs `icesat2 ARGS` in the work folder.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// Runs `icesat2 ARGS` in the work folder with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_icesat2"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.path())
            .output()
            .unwrap();
        Run(output)
    }
}

/// The result of one command.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    /// The signal that ended the process, if one did.
    #[cfg_attr(not(feature = "hdf5"), allow(dead_code))] // used by the hdf5-gated tests
    pub fn signal(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(&self.0.status)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Asserts exit status 0 and returns stdout.
    #[track_caller]
    pub fn success(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }
}

/// The Python with h5py, shapely, geopandas, pyarrow and duckdb: `ICESAT2_PYTHON`
/// (set by scripts/test), else `python3`.
pub fn python() -> String {
    std::env::var("ICESAT2_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs a Python script of `tests/python` and returns its stdout; panics with its stderr on failure.
#[track_caller]
pub fn python_script(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `../shared/data` next to the project, when present.
pub fn shared_data() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if path.is_dir() { Some(path) } else { None }
}

/// A file of the shared reference data. CI always has it: a test that
/// needs it fails, naming the file, rather than pass without checking.
#[track_caller]
pub fn shared_file(relative: &str) -> PathBuf {
    shared_data()
        .map(|data| data.join(relative))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("../shared/data/{relative} is missing: the reference data must sit beside the project")
        })
}

/// Synthetic granules written once per `key` into the test target folder and
/// reused by later tests (the folder appears whole, by rename).
#[cfg(feature = "hdf5")]
pub fn synthetic(key: &str, options: &icesat2::synth::SynthOptions) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synthetic");
    let folder = root.join(key);
    if folder.is_dir() {
        return folder;
    }
    std::fs::create_dir_all(&root).unwrap();
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&root)
        .unwrap();
    icesat2::synth::write_granules(staging.path(), options).unwrap();
    let staged = staging.keep();
    if std::fs::rename(&staged, &folder).is_err() {
        // Another test process won the race; use its copy.
        let _ = std::fs::remove_dir_all(&staged);
    }
    folder
}

/// The notebook's polygon (corners of `../shared/data/poly.json`), as GeoJSON text.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))] // used by the hdf5-gated tests
pub const NOTEBOOK_POLYGON: &str = r#"{"type":"Polygon","coordinates":[[[147.36292814819225,-43.13877567220346],[147.37430514872108,-43.138230401452724],[147.37434935986303,-43.14713157803227],[147.36332604846982,-43.14788316744545],[147.36292814819225,-43.13877567220346]]]}"#;

/// Synthetic granules around the notebook's polygon: four granules, 40 km of track each.
#[cfg(feature = "hdf5")]
pub fn tasmania_granules() -> PathBuf {
    synthetic(
        "tasmania-4x400",
        &icesat2::synth::SynthOptions {
            granules: 4,
            seed: 5,
            near: Some((147.368, -43.143)),
            segments: 400,
            photons: true,
            bare_beams: vec![],
            layout: icesat2::synth::Layout::R006,
        },
    )
}

/// The row count of two datasets that hold the same rows (any order, any
/// file layout); panics, naming the difference, otherwise.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))] // used by the hdf5-gated tests
pub fn same_rows(a: &Path, b: &Path) -> u64 {
    python_script(
        "compare_datasets.py",
        &[a.to_str().unwrap(), b.to_str().unwrap()],
    )
    .trim()
    .parse()
    .unwrap()
}

/// `file` rewritten by `h5repack` into the layout release 007 is written
/// in (file-space strategy PAGE, paged aggregation, 8 MiB pages), once per
/// file under the test target folder, and named as release 007.
pub fn release_007_layout(file: &Path) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("synthetic")
        .join(format!(
            "r007-{}",
            file.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
    let name = file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace("_006_", "_007_");
    let target = folder.join(name);
    if target.is_file() {
        return target;
    }
    std::fs::create_dir_all(&folder).unwrap();
    let staged = folder.join(format!(".repacking-{}.h5", std::process::id()));
    let status = std::process::Command::new("h5repack")
        .args(["-S", "PAGE", "-P", "1", "-G", "8388608"])
        .arg(file)
        .arg(&staged)
        .status()
        .expect("h5repack (Debian hdf5-tools)");
    assert!(status.success());
    std::fs::rename(&staged, &target).unwrap();
    target
}
