//! Criterion benchmarks of the hot paths of a run, on one full-size
//! synthetic granule (generated once under the bench cache):
//!
//! - `decode`: a beam's chunks read and inflated by the production reader
//!   (land-segment coordinates, two variables, the photon heights);
//! - `region`: the polygon test over a beam's coordinates (notebook polygon
//!   and a 3 x 3 degree box);
//! - `columns`: Arrow columns from decoded values (WKB points, a variable
//!   with fill as null, photon lists);
//! - `encode`: one granule's kept rows encoded as GeoParquet (the writer's default settings, zstd 1);
//! - `extract`: the whole per-granule path (open, plan, decode, filter,
//!   columns), 3 x 3 degree box, 8 variables.
//!
//! cargo bench --features hdf5 --bench hotpaths

#[path = "support/request.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::Float64Array;
use arrow::buffer::OffsetBuffer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{self, Hdf5Source, OutputVariable, Values, columns};
use icesat2::region::Region;
use icesat2::sink::{GeoParquetFile, WriterSettings};
use icesat2::store;
use icesat2::synth::{SynthOptions, write_granules};

const POLYGON: &str = r#"{"type":"Polygon","coordinates":[[[147.36292814819225,-43.13877567220346],[147.37430514872108,-43.138230401452724],[147.37434935986303,-43.14713157803227],[147.36332604846982,-43.14788316744545],[147.36292814819225,-43.13877567220346]]]}"#;
const BOX: [f64; 4] = [145.868, -44.643, 148.868, -41.643];
/// The bulk workload's variables (as in benches/e2e.sh).
const VARIABLES: [&str; 8] = [
    "land_segments/canopy/h_canopy",
    "land_segments/canopy/h_mean_canopy",
    "land_segments/canopy/canopy_openness",
    "land_segments/canopy/canopy_h_metrics",
    "land_segments/terrain/h_te_best_fit",
    "land_segments/terrain/h_te_uncertainty",
    "land_segments/terrain/terrain_slope",
    "signal_photons/ph_h",
];

fn granule() -> PathBuf {
    let folder = std::env::var("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/icesat2-bench/hotpaths")
        });
    if !folder.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&folder);
        let options = SynthOptions {
            granules: 1,
            seed: 11,
            near: Some((147.368, -43.143)),
            segments: 20_000,
            photons: true,
            bare_beams: vec![],
            layout: icesat2::synth::Layout::R006,
        };
        write_granules(&folder, &options).unwrap();
        std::fs::write(folder.join(".complete"), b"").unwrap();
    }
    std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "h5"))
        .unwrap()
}

fn open(path: &std::path::Path) -> ReaderFile {
    ReaderFile::open(Arc::new(store::open_local(path).unwrap())).unwrap()
}

/// Coordinates as f64 (ATL08 stores them as float32).
fn f64s(values: Values) -> Vec<f64> {
    (0..values.len())
        .map(|i| values.get_f64(i).unwrap())
        .collect()
}

fn decode(c: &mut Criterion) {
    let path = granule();
    let paths = [
        "/gt1l/land_segments/latitude",
        "/gt1l/land_segments/longitude",
        "/gt1l/land_segments/canopy/h_canopy",
        "/gt1l/land_segments/canopy/canopy_h_metrics",
        "/gt1l/signal_photons/ph_h",
    ];
    let probe = open(&path);
    let decoded: usize = paths
        .iter()
        .map(|p| {
            let values = probe.read_all(p).unwrap();
            values.len() * values.dtype().size()
        })
        .sum();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(decoded as u64));
    group.sample_size(20);
    group.bench_function("beam_chunks", |b| {
        b.iter(|| {
            let file = open(&path);
            paths
                .iter()
                .map(|p| file.read_all(p).unwrap().len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn region(c: &mut Criterion) {
    let file = open(&granule());
    let lat = f64s(file.read_all("/gt1l/land_segments/latitude").unwrap());
    let lon = f64s(file.read_all("/gt1l/land_segments/longitude").unwrap());
    let polygon = Region::from_geojson_str(POLYGON, "bench").unwrap();
    let bbox = Region::from_bbox(BOX, "bench").unwrap();
    let mut group = c.benchmark_group("region");
    group.throughput(Throughput::Elements(lat.len() as u64));
    for (name, region) in [("notebook_polygon", &polygon), ("box_3x3", &bbox)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                lon.iter()
                    .zip(&lat)
                    .filter(|(x, y)| region.contains(**x, **y))
                    .count()
            })
        });
    }
    group.finish();
}

fn arrow_columns(c: &mut Criterion) {
    let file = open(&granule());
    let lat = Float64Array::from(f64s(file.read_all("/gt1l/land_segments/latitude").unwrap()));
    let lon = Float64Array::from(f64s(
        file.read_all("/gt1l/land_segments/longitude").unwrap(),
    ));
    let h_canopy = file
        .read_all("/gt1l/land_segments/canopy/h_canopy")
        .unwrap();
    let fill = file
        .dataset("/gt1l/land_segments/canopy/h_canopy")
        .unwrap()
        .fill_attribute
        .unwrap();
    let ph_h = file.read_all("/gt1l/signal_photons/ph_h").unwrap();
    let n_rows = lat.len();
    let per_row = ph_h.len() / n_rows;
    let mut lengths = vec![per_row; n_rows];
    lengths[n_rows - 1] += ph_h.len() - per_row * n_rows;
    let offsets = OffsetBuffer::from_lengths(lengths);
    let variable = |path: &str| {
        let spec = granule::variables::lookup(path).unwrap();
        OutputVariable {
            spec,
            name: spec.name().to_string(),
        }
    };
    let h_canopy_var = variable("land_segments/canopy/h_canopy");
    let ph_h_var = variable("signal_photons/ph_h");
    let mut group = c.benchmark_group("columns");
    group.throughput(Throughput::Elements(n_rows as u64));
    group.bench_function("wkb_points", |b| {
        b.iter(|| columns::wkb_points(&lon, &lat).len())
    });
    group.bench_function("fill_as_null", |b| {
        b.iter(|| {
            columns::variable_array(&h_canopy_var, h_canopy.clone(), Some(&fill), n_rows, None)
                .unwrap()
                .len()
        })
    });
    group.bench_function("photon_lists", |b| {
        b.iter(|| {
            columns::variable_array(&ph_h_var, ph_h.clone(), None, n_rows, Some(&offsets))
                .unwrap()
                .len()
        })
    });
    group.finish();
}

fn extract_and_encode(c: &mut Criterion) {
    let path = granule();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let request = support::request(Region::from_bbox(BOX, "bench").unwrap(), &VARIABLES);
    let extract = || {
        let file = open(&path);
        let meta = granule::granule_meta(&file, &name).unwrap();
        granule::extract(&file, &name, meta, &request).unwrap()
    };
    let batch = extract().batch;
    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Elements(batch.num_rows() as u64));
    group.sample_size(10);
    group.bench_function("granule_box_8_variables", |b| {
        b.iter(|| extract().batch.num_rows())
    });
    group.finish();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(batch.num_rows() as u64));
    group.sample_size(10);
    group.bench_function("geoparquet", |b| {
        b.iter(|| {
            let mut file =
                GeoParquetFile::new(&batch.schema(), &WriterSettings::default(), Vec::new())
                    .unwrap();
            file.write(&batch).unwrap();
            file.finish(Vec::new()).unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(benches, decode, region, arrow_columns, extract_and_encode);
criterion_main!(benches);
