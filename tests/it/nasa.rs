//! The `cmr` source against NASA-shaped servers on loopback: CMR search,
//! Earthdata Login (token and .netrc), S3 with expiring credentials, HTTPS
//! range reads. The same manifest through `local`, `cmr` + `s3` and `cmr` +
//! `https` gives identical rows; no secret leaks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{BEAMS, GranuleName, Hdf5Source, Node};
use icesat2::store;
use icesat2::synth::SynthOptions;

use super::servers::{KeyRing, Listed, NasaConfig, NasaServer, S3Server};
use super::util::{self, Workdir};

const BUCKET: &str = "nsidc-cumulus-prod-protected";
const REGION: &str = r#"{"type":"Polygon","coordinates":[[[147.2,-43.25],[147.55,-43.25],[147.55,-43.05],[147.2,-43.05],[147.2,-43.25]]]}"#;
const VARIABLES: &str = "variables: [land_segments/canopy/h_canopy, land_segments/canopy/canopy_h_metrics, signal_photons/ph_h]\n";

/// Granules near the region, plus decoys elsewhere that the track search must leave out.
fn granules() -> Vec<PathBuf> {
    let near = util::tasmania_granules();
    let decoys = util::synthetic(
        "decoys-3x200",
        &SynthOptions {
            granules: 3,
            seed: 77,
            near: None,
            segments: 200,
            photons: false,
            bare_beams: vec![],
        },
    );
    let mut files: Vec<PathBuf> = [near, decoys]
        .iter()
        .flat_map(|folder| {
            std::fs::read_dir(folder)
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    files.sort();
    files
}

/// The [W, S, E, N] of a granule's segments.
pub(super) fn bbox_of(file: &Path) -> [f64; 4] {
    let reader = ReaderFile::open(Arc::new(store::open_local(file).unwrap())).unwrap();
    let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for beam in BEAMS {
        let path = format!("/{beam}/land_segments/latitude");
        if reader.node(&path).unwrap() != Node::Dataset {
            continue;
        }
        let lat = reader.read_all(&path).unwrap();
        let lon = reader
            .read_all(&format!("/{beam}/land_segments/longitude"))
            .unwrap();
        for i in 0..lat.len() {
            let (x, y) = (lon.get_f64(i).unwrap(), lat.get_f64(i).unwrap());
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x),
                bbox[3].max(y),
            ];
        }
    }
    bbox
}

/// Servers holding `files` in S3 (NSIDC's key layout) and in the catalog.
struct Nasa {
    s3: S3Server,
    server: NasaServer,
    ring: KeyRing,
    granules_dir: PathBuf,
    root: tempfile::TempDir,
}

fn nasa(config: NasaConfig, s3_delay: Duration) -> Nasa {
    let root = tempfile::tempdir().unwrap();
    let granules_dir = root.path().join("local");
    std::fs::create_dir_all(&granules_dir).unwrap();
    let mut listed = Vec::new();
    for file in granules() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let start = GranuleName::parse(&name).unwrap().start;
        let key = format!("ATLAS/ATL08/006/{}/{name}", start.format("%Y/%m/%d"));
        let target = root.path().join("s3").join(BUCKET).join(&key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
        std::fs::copy(&file, granules_dir.join(&name)).unwrap();
        listed.push(Listed {
            name,
            bucket: BUCKET.into(),
            key,
            size: std::fs::metadata(&file).unwrap().len(),
            bbox: bbox_of(&file),
            file,
        });
    }
    let ring = KeyRing::default();
    let s3 = S3Server::start(&root.path().join("s3"), ring.clone(), s3_delay);
    let server = NasaServer::start(config, listed, ring.clone());
    Nasa {
        s3,
        server,
        ring,
        granules_dir,
        root,
    }
}

impl Nasa {
    fn cmr_manifest(&self, access: &str, tracks: &str, token_file: bool) -> String {
        let token = if token_file {
            "    token_file: token.txt\n"
        } else {
            ""
        };
        format!(
            "region: {{ geojson: region.json }}\ntime: {{ start: 2019-01-01, end: 2019-12-31 }}\n{VARIABLES}source:\n  cmr:\n    collection: C2613553260-NSIDC_CPRD\n    tracks: {tracks}\n    access: {access}\n{token}    cmr_url: {}\n    credentials_url: {}/s3credentials\n    s3_endpoint: {}\n    edl_url: {}\noutput: {{ path: out }}\n",
            self.server.url, self.server.url, self.s3.endpoint, self.server.edl_url
        )
    }

    fn local_manifest(&self) -> String {
        format!(
            "region: {{ geojson: region.json }}\ntime: {{ start: 2019-01-01, end: 2019-12-31 }}\n{VARIABLES}source: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
            self.granules_dir.display()
        )
    }
}

fn workdir(manifest: &str, token: &str) -> Workdir {
    let work = Workdir::new();
    work.write("region.json", REGION);
    work.write("token.txt", &format!("{token}\n"));
    work.write("m.yaml", manifest);
    work
}

fn run(work: &Workdir) -> util::Run {
    let run = work.run(&["run", "m.yaml"]);
    assert_eq!(
        run.code(),
        0,
        "stdout {}\nstderr {}",
        run.stdout(),
        run.stderr()
    );
    run
}

#[test]
fn local_cmr_s3_and_cmr_https_give_identical_rows() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let local = workdir(&nasa.local_manifest(), "test-token");
    run(&local);
    let s3 = workdir(&nasa.cmr_manifest("s3", "rgt", true), "test-token");
    run(&s3);
    let https = workdir(&nasa.cmr_manifest("https", "rgt", true), "test-token");
    run(&https);
    let rows = util::same_rows(&local.join("out"), &s3.join("out"));
    assert!(rows > 100, "{rows}");
    assert_eq!(
        util::same_rows(&local.join("out"), &https.join("out")),
        rows
    );
    // The local run prunes the decoys by name; the track search never lists them.
    let plan = local.run(&["plan", "--json", "m.yaml"]).success();
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let skipped: Vec<&serde_json::Value> = plan["granules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| !g["skip"].is_null())
        .collect();
    assert_eq!(skipped.len(), 3, "{plan}");
    assert!(
        skipped
            .iter()
            .all(|g| g["skip"].as_str().unwrap().contains("does not")),
        "{skipped:?}"
    );
    let plan = s3.run(&["plan", "--json", "m.yaml"]).success();
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["granules"].as_array().unwrap().len(), 4, "{plan}");
    assert!(
        plan["granules"][0]["location"]
            .as_str()
            .unwrap()
            .starts_with("s3://nsidc-cumulus-prod-protected/ATLAS/ATL08/006/2019/")
    );
    assert!(plan["granules"][0]["size"].as_u64().unwrap() > 100_000);
    assert!(nasa.s3.requests.load(Ordering::Relaxed) > 0);
    assert!(nasa.server.seen.data.load(Ordering::Relaxed) > 0);
}

#[test]
fn spatial_search_finds_the_same_rows() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let local = workdir(&nasa.local_manifest(), "test-token");
    run(&local);
    let spatial = workdir(&nasa.cmr_manifest("https", "spatial", true), "test-token");
    run(&spatial);
    assert!(util::same_rows(&local.join("out"), &spatial.join("out")) > 100);
}

#[test]
fn credentials_that_expire_mid_run_are_refreshed() {
    // Keys live 2 s (refreshed at 1.6 s); 60 ms per S3 request makes the
    // run last well beyond that (about 4 s alone on 2 cores) however fast
    // decoding gets.
    let ttl = Duration::from_secs(2);
    let config = NasaConfig {
        credentials_ttl: ttl,
        ..NasaConfig::default()
    };
    let nasa = nasa(config, Duration::from_millis(60));
    let local = workdir(&nasa.local_manifest(), "test-token");
    run(&local);
    let s3 = workdir(&nasa.cmr_manifest("s3", "rgt", true), "test-token");
    let clock = std::time::Instant::now();
    run(&s3);
    assert!(
        clock.elapsed() > ttl,
        "the run must outlive the credentials: {:?}",
        clock.elapsed()
    );
    assert!(
        nasa.server.seen.credentials.load(Ordering::Relaxed) >= 2,
        "credentials fetched only once"
    );
    assert!(util::same_rows(&local.join("out"), &s3.join("out")) > 100);
}

#[test]
fn no_secret_appears_in_output_logs_or_report() {
    let token = "tok-3f9a1c7e5b2d4a6f";
    let config = NasaConfig {
        token: token.into(),
        ..NasaConfig::default()
    };
    let nasa = nasa(config, Duration::ZERO);
    let work = workdir(&nasa.cmr_manifest("s3", "rgt", true), token);
    let run = run(&work);
    let plan = work.run(&["plan", "--json", "m.yaml"]).success();
    let mut secrets = nasa.ring.secrets();
    secrets.push(token.to_string());
    assert!(secrets.len() >= 3);
    let mut texts = vec![
        ("stdout".to_string(), run.stdout()),
        ("stderr".to_string(), run.stderr()),
        ("plan".to_string(), plan),
    ];
    for entry in walk(&work.join("out")) {
        texts.push((
            entry.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned(),
        ));
    }
    for (what, text) in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} contains a secret");
        }
    }
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[test]
fn cmr_failures_and_throttling_are_retried_and_the_plan_is_complete() {
    let calm = nasa(NasaConfig::default(), Duration::ZERO);
    let stormy = nasa(
        NasaConfig {
            fail_searches: vec![1, 2, 3],
            throttle_searches: vec![5],
            ..NasaConfig::default()
        },
        Duration::ZERO,
    );
    let plans: Vec<serde_json::Value> = [&calm, &stormy]
        .iter()
        .map(|nasa| {
            let work = workdir(&nasa.cmr_manifest("https", "rgt", true), "test-token");
            serde_json::from_str(&work.run(&["plan", "--json", "m.yaml"]).success()).unwrap()
        })
        .collect();
    let names = |plan: &serde_json::Value| {
        plan["granules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["granule"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&plans[0]).len(), 4);
    assert_eq!(names(&plans[0]), names(&plans[1]));
    // Paging: pages of 3 granules, so more searches than queries.
    assert!(stormy.server.seen.searches.load(Ordering::Relaxed) >= 6);
}

#[test]
fn a_refused_token_exits_1_naming_the_token() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let work = workdir(&nasa.cmr_manifest("https", "rgt", true), "wrong-token");
    let run = work.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("CMR refused the Earthdata token (401): Token does not exist"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.stderr().trim().lines().count(), 1);
    assert!(!run.stderr().contains("wrong-token"));
    assert!(!work.join("out").exists());
}

#[test]
fn netrc_login_flow_sends_the_password_only_to_earthdata_login() {
    let password = "pw-9d8c7b6a";
    let config = NasaConfig {
        netrc_login: Some(("alice".into(), password.into())),
        ..NasaConfig::default()
    };
    let nasa = nasa(config, Duration::ZERO);
    let local = workdir(&nasa.local_manifest(), "unused");
    run(&local);
    let work = workdir(&nasa.cmr_manifest("https", "rgt", false), "unused");
    let edl = url::Url::parse(&nasa.server.edl_url).unwrap();
    let netrc = work.write(
        "netrc",
        &format!(
            "machine {}:{} login alice password {password}\n",
            edl.host_str().unwrap(),
            edl.port().unwrap()
        ),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"))
        .args(["run", "m.yaml"])
        .current_dir(work.path())
        .env("NETRC", &netrc)
        .env_remove("EARTHDATA_TOKEN")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(nasa.server.seen.edl_logins.load(Ordering::Relaxed) >= 1);
    assert_eq!(nasa.server.seen.password_leaks.load(Ordering::Relaxed), 0);
    assert!(util::same_rows(&local.join("out"), &work.join("out")) > 100);
    assert!(!String::from_utf8_lossy(&output.stderr).contains(password));
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let work = workdir(&nasa.cmr_manifest("https", "rgt", false), "unused");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"))
        .args(["run", "m.yaml"])
        .current_dir(work.path())
        .env("NETRC", work.join("no-netrc"))
        .env_remove("EARTHDATA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("source.cmr: no Earthdata Login credentials"),
        "{stderr}"
    );
}

#[test]
fn output_can_go_to_an_s3_prefix() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let local = workdir(&nasa.local_manifest(), "unused");
    run(&local);
    std::fs::create_dir_all(nasa.root.path().join("s3/results")).unwrap();
    let manifest = nasa.local_manifest().replace(
        "output: { path: out }",
        "output: { path: s3://results/runs/tasmania }",
    );
    let work = workdir(&manifest, "unused");
    let (key, secret) = nasa.ring.issue(Duration::from_secs(3600));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"))
        .args(["run", "m.yaml"])
        .current_dir(work.path())
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_ENDPOINT", &nasa.s3.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-west-2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("s3://results/runs/tasmania/_runs/"),
        "{stderr}"
    );
    let written = nasa.root.path().join("s3/results/runs/tasmania");
    assert!(written.join("_runs").is_dir());
    let rows = util::same_rows(&local.join("out"), &written);
    assert!(rows > 100);
    assert!(!stderr.contains(&secret));

    // The quick-look was made from the objects (listed and read through
    // the S3 API) and counts what the local run's does.
    assert!(
        !stderr.contains("quick-look report not written"),
        "{stderr}"
    );
    let rows_shown = |runs: &Path| {
        let html = std::fs::read_dir(runs)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "html"))
            .map(|path| std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|| panic!("no quick-look in {}", runs.display()));
        let marker = "id=\"rows\" data-value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()]
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(rows_shown(&written.join("_runs")), rows);
    assert_eq!(rows_shown(&local.join("out/_runs")), rows);
}
