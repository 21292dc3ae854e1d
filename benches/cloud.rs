//! Cloud reads: our planned range reads against "download the whole object,
//! then decode" and against libhdf5 (whole download, then libhdf5 reads), on
//! two full-size synthetic granules in each layout NSIDC writes (release
//! 006: libhdf5's defaults; release 007: paged aggregation, 8 MiB pages)
//! behind a loopback S3 server with a fixed delay per request. Reports time,
//! bytes, requests and the sequential round trips of the slowest granule
//! (the two granules are read at once, as a run with two threads does).
//!
//! cargo bench --features hdf5 --bench cloud

#[path = "support/request.rs"]
mod request;
#[path = "../tests/it/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use icesat2::granule::libhdf5::LibHdf5File;
use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{self, Hdf5Source, Request};
use icesat2::region::Region;
use icesat2::store;
use icesat2::synth::{Layout, SynthOptions, write_granules};
use object_store::ObjectStoreExt;

const BUCKET: &str = "bench";
const POLYGON: &str = r#"{"type":"Polygon","coordinates":[[[147.36292814819225,-43.13877567220346],[147.37430514872108,-43.138230401452724],[147.37434935986303,-43.14713157803227],[147.36332604846982,-43.14788316744545],[147.36292814819225,-43.13877567220346]]]}"#;

/// The two granules of `layout`, written once under `BENCH_DIR` (default
/// `~/.cache/icesat2-bench`).
fn granules(layout: Layout) -> Vec<PathBuf> {
    let base = std::env::var("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/icesat2-bench")
        });
    let folder = base.join(match layout {
        Layout::R006 => "cloud",
        Layout::R007 => "cloud-r007",
    });
    if !folder.is_dir() {
        let options = SynthOptions {
            granules: 2,
            seed: 3,
            near: Some((147.368, -43.143)),
            segments: 20_000,
            photons: true,
            bare_beams: vec![],
            layout,
        };
        write_granules(&folder, &options).unwrap();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn request() -> Request {
    request::request(
        Region::from_geojson_str(POLYGON, "bench").unwrap(),
        &[
            "land_segments/canopy/h_canopy",
            "land_segments/terrain/h_te_best_fit",
            "signal_photons/ph_h",
        ],
    )
}

fn extract(source: &dyn Hdf5Source, name: &str, request: &Request) -> usize {
    granule::preload(source, request);
    let meta = granule::granule_meta(source, name).unwrap();
    granule::extract(source, name, meta, request)
        .unwrap()
        .batch
        .num_rows()
}

struct Outcome {
    seconds: f64,
    bytes: u64,
    requests: u64,
    /// Sequential round trips of the slowest granule (planned reads only).
    round_trips: Option<u64>,
    rows: usize,
}

fn main() {
    let request = request();
    println!(
        "{:52} {:>8} {:>9} {:>9} {:>6} {:>6}",
        "method", "seconds", "MB", "requests", "trips", "rows"
    );
    for layout in [Layout::R006, Layout::R007] {
        let files = granules(layout);
        println!(
            "{layout:?} layout: {} granules, {:.1} MB in all; notebook polygon, 3 variables",
            files.len(),
            files
                .iter()
                .map(|f| std::fs::metadata(f).unwrap().len())
                .sum::<u64>() as f64
                / 1e6
        );
        let mut seconds = Vec::new();
        for delay in [Duration::ZERO, Duration::from_millis(50)] {
            seconds.push(compare(&files, &request, layout, delay));
        }
        println!(
            "{layout:?} layout: 50 ms per request costs planned reads {:+.2} s",
            seconds[1] - seconds[0]
        );
    }
}

/// Runs the three methods over `files` behind an S3 server taking `delay`
/// per request; returns the planned reads' seconds.
fn compare(files: &[PathBuf], request: &Request, layout: Layout, delay: Duration) -> f64 {
    let label = |method: &str| format!("{layout:?} {method}, {} ms/request", delay.as_millis());
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let ring = servers::KeyRing::default();
    let (key, secret) = ring.issue(Duration::from_secs(3600));
    let s3 = servers::S3Server::start(root.path(), ring.clone(), delay);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        s3.upload(&ring, BUCKET, &name, file);
    }
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-west-2")
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_endpoint(&s3.endpoint)
            .with_allow_http(true)
            .build()
            .unwrap(),
    );
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();

    let mut trips = 0;
    let planned = measure(&s3, || {
        let mut rows = 0;
        let mut bytes = 0;
        std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .iter()
                .map(|name| {
                    let store = store.clone();
                    scope.spawn(move || {
                        let source = store::remote::ObjectSource {
                            store,
                            path: name.as_str().into(),
                            label: name.clone(),
                        };
                        let storage = Arc::new(
                            store::remote::RemoteStorage::open(
                                Arc::new(source),
                                store::runtime().handle().clone(),
                                store::head_bytes(name),
                            )
                            .unwrap(),
                        );
                        let file =
                            ReaderFile::open_with_prefetch(storage.clone(), Some(storage.clone()))
                                .unwrap();
                        let rows = extract(&file, name, request);
                        let counters = storage.counters();
                        let trips = counters
                            .round_trips
                            .load(std::sync::atomic::Ordering::Relaxed);
                        (rows, counters.bytes(), trips)
                    })
                })
                .collect();
            for handle in handles {
                let (r, b, t) = handle.join().unwrap();
                rows += r;
                bytes += b;
                trips = trips.max(t);
            }
        });
        (rows, bytes)
    });
    let mut planned = planned;
    planned.round_trips = Some(trips);
    report(&label("planned range reads"), &planned);

    let whole = measure(&s3, || {
        let mut rows = 0;
        let mut bytes = 0;
        for name in &names {
            let data = download(&store, name);
            bytes += data.len() as u64;
            let storage = Arc::new(hdf5_reader::BytesStorage::new(data.to_vec()));
            let file = ReaderFile::open(storage).unwrap();
            rows += extract(&file, name, request);
        }
        (rows, bytes)
    });
    report(&label("whole object, then decode"), &whole);

    let libhdf5 = measure(&s3, || {
        let mut rows = 0;
        let mut bytes = 0;
        for name in &names {
            let data = download(&store, name);
            bytes += data.len() as u64;
            let local = root.path().join(format!("copy-{name}"));
            std::fs::write(&local, &data).unwrap();
            let file = LibHdf5File::open(&local).unwrap();
            rows += extract(&file, name, request);
            std::fs::remove_file(&local).unwrap();
        }
        (rows, bytes)
    });
    report(&label("whole object, then libhdf5"), &libhdf5);
    planned.seconds
}

/// The whole object, in one GET.
fn download(store: &Arc<dyn object_store::ObjectStore>, name: &str) -> bytes::Bytes {
    store::runtime().block_on(async {
        store
            .get(&name.into())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    })
}

fn measure(s3: &servers::S3Server, work: impl FnOnce() -> (usize, u64)) -> Outcome {
    let before = s3.requests.load(std::sync::atomic::Ordering::Relaxed);
    let clock = Instant::now();
    let (rows, bytes) = work();
    Outcome {
        seconds: clock.elapsed().as_secs_f64(),
        bytes,
        requests: s3.requests.load(std::sync::atomic::Ordering::Relaxed) - before,
        round_trips: None,
        rows,
    }
}

fn report(label: &str, outcome: &Outcome) {
    let trips = outcome
        .round_trips
        .map_or_else(|| "-".to_string(), |t| t.to_string());
    println!(
        "{label:52} {:8.2} {:9.1} {:9} {trips:>6} {:6}",
        outcome.seconds,
        outcome.bytes as f64 / 1e6,
        outcome.requests,
        outcome.rows
    );
}
