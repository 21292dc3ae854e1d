//! Cloud-optimized reads through the loopback S3 server: only the bytes a
//! subset needs, no chunk fetched twice, the same rows as local reads; S3
//! errors as short reasons.

use std::path::{Path, PathBuf};
use std::time::Duration;

use icesat2::report::RunReport;
use icesat2::synth::SynthOptions;

use super::servers::{Fault, FaultProxy, KeyRing, Listed, NasaConfig, NasaServer, S3Server};
use super::util::{self, Workdir};

const BUCKET: &str = "nsidc-cumulus-prod-protected";

/// One full-size granule (six beams, 20,000 segments per strong beam,
/// photons) crossing the notebook's polygon.
fn full_size_granule() -> PathBuf {
    let folder = util::synthetic(
        "fullsize-1x20000",
        &SynthOptions {
            granules: 1,
            seed: 12,
            near: Some((147.368, -43.143)),
            segments: 20_000,
            photons: true,
            bare_beams: vec![],
            layout: icesat2::synth::Layout::R006,
        },
    );
    std::fs::read_dir(folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

struct Cloud {
    s3: S3Server,
    /// Where runs reach S3: the server, or a proxy in front of it.
    endpoint: String,
    server: NasaServer,
    release_007: bool,
    _root: tempfile::TempDir,
}

fn cloud(file: &Path) -> Cloud {
    cloud_with_delay(file, Duration::ZERO)
}

/// `cloud`, the S3 server taking `delay` more over every request.
fn cloud_with_delay(file: &Path, delay: Duration) -> Cloud {
    let root = tempfile::tempdir().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let release_007 = name.contains("_007_");
    let key = format!(
        "ATLAS/ATL08/{}/{name}",
        if release_007 { "007" } else { "006" }
    );
    std::fs::create_dir_all(root.path().join("s3").join(BUCKET)).unwrap();
    let ring = KeyRing::default();
    let s3 = S3Server::start(&root.path().join("s3"), ring.clone(), delay);
    s3.upload(&ring, BUCKET, &key, file);
    let listed = Listed {
        name,
        bucket: BUCKET.into(),
        key,
        file: file.to_path_buf(),
        size: std::fs::metadata(file).unwrap().len(),
        bbox: [-180.0, -90.0, 180.0, 90.0],
    };
    let server = NasaServer::start(NasaConfig::default(), vec![listed], ring);
    Cloud {
        endpoint: s3.endpoint.clone(),
        s3,
        server,
        release_007,
        _root: root,
    }
}

/// Where a run reads the granule from.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// CMR, then S3 with temporary keys.
    S3,
    /// CMR, then HTTPS byte ranges with the token.
    Https,
    /// The granule's folder on disk.
    Local(&'a Path),
}

fn run(cloud: &Cloud, region: &str, variables: &str, via: Via) -> (Workdir, RunReport) {
    let work = Workdir::new();
    work.write("region.json", region);
    work.write("token.txt", "test-token\n");
    // The collection of the granule's release (the loopback CMR keeps
    // granules to their release's collection).
    let collection = if cloud.release_007 {
        "C3565574177-NSIDC_CPRD"
    } else {
        "C2613553260-NSIDC_CPRD"
    };
    let source = match via {
        Via::Local(folder) => format!("source: {{ local: {{ path: {} }} }}\n", folder.display()),
        Via::S3 | Via::Https => format!(
            "source:\n  cmr: {{ collection: {collection}, access: {}, token_file: token.txt, cmr_url: {}, credentials_url: {}/s3credentials, s3_endpoint: {} }}\n",
            if matches!(via, Via::S3) {
                "s3"
            } else {
                "https"
            },
            cloud.server.url,
            cloud.server.url,
            cloud.endpoint
        ),
    };
    work.write("m.yaml", &format!("region: {{ geojson: region.json }}\nvariables: [{variables}]\n{source}output: {{ path: out }}\n"));
    work.run(&["run", "m.yaml"]).success();
    let runs = work.join("out/_runs");
    let report = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        // The run report, not a hidden file beside it (the dataset marker).
        .find(|path| {
            path.extension().is_some_and(|e| e == "json")
                && !path.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .unwrap();
    let report: RunReport =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    (work, report)
}

#[test]
fn a_small_polygon_fetches_little_more_than_the_chunks_it_needs() {
    let file = full_size_granule();
    let cloud = cloud(&file);
    let variables = [
        "land_segments/canopy/h_canopy",
        "land_segments/terrain/h_te_best_fit",
        "signal_photons/ph_h",
    ];
    let (work, report) = run(
        &cloud,
        util::NOTEBOOK_POLYGON,
        &variables.join(", "),
        Via::S3,
    );
    let detail = &report.details[0];
    assert!(detail.rows > 10, "{}", detail.rows);
    work.write("poly.json", util::NOTEBOOK_POLYGON);
    let mut args = vec![
        file.to_str().unwrap().to_string(),
        work.join("poly.json").display().to_string(),
    ];
    args.extend(variables.iter().map(|v| v.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sizes: serde_json::Value =
        serde_json::from_str(&util::python_script("needed_chunks.py", &args)).unwrap();
    let needed = sizes["needed"].as_u64().unwrap();
    let file_size = sizes["file"].as_u64().unwrap();
    let chunk_bytes = detail.bytes_read - detail.metadata_bytes;
    assert!(
        chunk_bytes as f64 <= 1.5 * needed as f64,
        "fetched {chunk_bytes} chunk bytes for {needed} needed ({} metadata)",
        detail.metadata_bytes
    );
    assert!(
        (detail.bytes_read as f64) < 0.15 * file_size as f64,
        "fetched {} of {file_size} bytes ({} requests)",
        detail.bytes_read,
        detail.requests
    );
    assert_eq!(detail.unplanned_reads, 0);
    eprintln!(
        "small polygon: {} requests, {} bytes fetched ({} metadata, {} chunks; {} needed), file {} bytes",
        detail.requests, detail.bytes_read, detail.metadata_bytes, chunk_bytes, needed, file_size
    );
}

#[test]
fn a_polygon_over_the_whole_granule_fetches_no_chunk_twice_and_matches_local_reads() {
    let file = full_size_granule();
    let cloud = cloud(&file);
    let region = r#"{"type":"Polygon","coordinates":[[[-180,-89],[180,-89],[180,89],[-180,89],[-180,-89]]]}"#;
    let variables =
        "land_segments/canopy/h_canopy, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h";
    let (remote, report) = run(&cloud, region, variables, Via::S3);
    let detail = &report.details[0];
    assert_eq!(detail.refetched_bytes, 0);
    assert_eq!(detail.unplanned_reads, 0);
    assert!(
        detail.bytes_read <= std::fs::metadata(&file).unwrap().len(),
        "{}",
        detail.bytes_read
    );
    let (local, local_report) = run(
        &cloud,
        region,
        variables,
        Via::Local(file.parent().unwrap()),
    );
    assert_eq!(local_report.rows_written, report.rows_written);
    let rows = util::python_script(
        "compare_datasets.py",
        &[
            local.join("out").to_str().unwrap(),
            remote.join("out").to_str().unwrap(),
        ],
    );
    assert!(rows.trim().parse::<u64>().unwrap() > 50_000, "{rows}");
}

#[test]
fn faults_on_the_wire_are_retried_to_the_rows_of_a_fault_free_run() {
    let file = full_size_granule();
    let mut cloud = cloud(&file);
    let region = r#"{"type":"Polygon","coordinates":[[[145.868,-44.643],[148.868,-44.643],[148.868,-41.643],[145.868,-41.643],[145.868,-44.643]]]}"#;
    let variables =
        "land_segments/canopy/h_canopy, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h";
    let (clean, _) = run(&cloud, region, variables, Via::S3);
    let proxy = FaultProxy::start(&cloud.s3.endpoint, 0.10, 8);
    cloud.endpoint = proxy.endpoint.clone();
    let (faulty, report) = run(&cloud, region, variables, Via::S3);
    assert_eq!(report.granules.done, 1, "{:?}", report.granules);
    let kinds = [
        Fault::Unavailable,
        Fault::ResetMidBody,
        Fault::TruncatedBody,
        Fault::SlowFirstByte,
    ];
    for kind in kinds {
        assert!(
            proxy.count(kind) > 0,
            "no {kind:?} among {:?}",
            proxy.injected
        );
    }
    let rows = util::same_rows(&clean.join("out"), &faulty.join("out"));
    assert!(rows > 1000, "{rows}");
    eprintln!(
        "{} requests through the proxy, faults {:?}, {rows} rows",
        report.details[0].requests,
        proxy.injected.lock().unwrap()
    );
}

#[test]
fn s3_error_reasons_keep_only_the_code_and_message() {
    use icesat2::store::StoreError;
    use icesat2::store::remote::{ObjectSource, RangeSource};

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("s3").join(BUCKET)).unwrap();
    let object = root.path().join("object.bin");
    std::fs::write(&object, vec![7u8; 4096]).unwrap();
    let ring = KeyRing::default();
    let s3 = S3Server::start(&root.path().join("s3"), ring.clone(), Duration::ZERO);
    s3.upload(&ring, BUCKET, "a/object.bin", &object);
    let source = |key: &str, secret: &str| {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-west-2")
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_endpoint(&s3.endpoint)
            .with_allow_http(true)
            .with_retry(object_store::RetryConfig {
                max_retries: 1,
                retry_timeout: Duration::from_secs(10),
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(1),
                    max_backoff: Duration::from_millis(1),
                    base: 2.0,
                },
            })
            .build()
            .unwrap();
        ObjectSource {
            store: std::sync::Arc::new(store),
            path: object_store::path::Path::from("a/object.bin"),
            label: format!("s3://{BUCKET}/a/object.bin"),
        }
    };
    let runtime = icesat2::store::runtime();
    let reason = |err: StoreError| {
        let text = err.to_string();
        assert!(!text.contains('<') && !text.contains('\n'), "{text}");
        text
    };

    // Refused keys (403, not retried): a permission error.
    let stranger = source("AKIAUNKNOWN", "nothing");
    let text = reason(runtime.block_on(stranger.get_range(0..10)).unwrap_err());
    assert!(text.contains("InvalidAccessKeyId"), "{text}");
    // A HEAD's answer has no body: the status alone.
    let text = reason(runtime.block_on(stranger.size()).unwrap_err());
    assert!(text.ends_with("403 Forbidden"), "{text}");

    // SlowDown past object_store's retries: a transient failure.
    let (key, secret) = ring.issue(Duration::from_secs(3600));
    let known = source(&key, &secret);
    s3.faults.fail("a/object.bin", 2);
    let err = runtime.block_on(known.get_range(0..10)).unwrap_err();
    assert!(matches!(err, StoreError::Transient { .. }), "{err:?}");
    let text = reason(err);
    assert!(text.contains("SlowDown: injected fault"), "{text}");
    assert_eq!(s3.faults.remaining(), 0);
    assert_eq!(runtime.block_on(known.get_range(0..10)).unwrap().len(), 10);
}

#[test]
fn release_007_paged_granules_read_the_rows_of_release_006_in_few_round_trips() {
    let r006 = full_size_granule();
    let r007 = util::release_007_layout(&r006);
    let variables =
        "land_segments/canopy/h_canopy, land_segments/terrain/h_te_best_fit, signal_photons/ph_h";
    // Round trips are counted from requests in flight; a delay per request
    // keeps requests sent together overlapping as they would over a WAN.
    let delay = Duration::from_millis(20);
    let mut outputs = Vec::new();
    for (file, most_round_trips) in [(&r006, 10), (&r007, 4)] {
        let cloud = cloud_with_delay(file, delay);
        let (remote, report) = run(&cloud, util::NOTEBOOK_POLYGON, variables, Via::S3);
        let (https, https_report) = run(&cloud, util::NOTEBOOK_POLYGON, variables, Via::Https);
        let (local, local_report) = run(
            &cloud,
            util::NOTEBOOK_POLYGON,
            variables,
            Via::Local(file.parent().unwrap()),
        );
        let detail = &report.details[0];
        eprintln!(
            "{}: {} rows, {} requests, {} round trips, {} bytes ({} metadata)",
            detail.granule,
            detail.rows,
            detail.requests,
            detail.round_trips,
            detail.bytes_read,
            detail.metadata_bytes,
        );
        assert!(
            detail.round_trips <= most_round_trips,
            "{}: {} round trips",
            detail.granule,
            detail.round_trips
        );
        assert_eq!(detail.unplanned_reads, 0, "{}", detail.granule);
        assert_eq!(local_report.rows_written, report.rows_written);
        assert_eq!(https_report.rows_written, report.rows_written);
        assert!(
            https_report.details[0].round_trips <= most_round_trips,
            "{} over HTTPS: {} round trips",
            detail.granule,
            https_report.details[0].round_trips
        );
        assert!(report.rows_written > 10);
        outputs.push(remote);
        outputs.push(https);
        outputs.push(local);
    }
    // Every output equals the first (release 006 over S3), row for row;
    // the copies differ only in the granule's name.
    let first = outputs[0].join("out");
    for output in &outputs[1..] {
        let rows = util::python_script(
            "compare_datasets.py",
            &[
                first.to_str().unwrap(),
                output.join("out").to_str().unwrap(),
                "granule",
            ],
        );
        assert_eq!(rows.trim(), outputs_rows(&outputs[0]).to_string());
    }
}

fn outputs_rows(work: &Workdir) -> u64 {
    let runs = work.join("out/_runs");
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            serde_json::from_str::<RunReport>(&std::fs::read_to_string(p).unwrap())
                .unwrap()
                .rows_written
        })
        .sum()
}
