//! The `cmr` source against NASA-shaped servers on loopback: CMR search,
//! Earthdata Login (token and .netrc), S3 with expiring credentials, HTTPS
//! range reads. The same manifest through `local`, `cmr` + `s3` and `cmr` +
//! `https` gives identical rows; no secret leaks. Then servers that
//! misbehave: credentials asked for over plain http or by other hosts,
//! bodies that ignore or misstate the range, `Retry-After` as a date, CMR
//! pages cut off or paging in a circle, s3credentials failing. And NASA's
//! catalog as it is: two revisions of a granule, the newest release CMR
//! lists (or none of the one asked for), sizes that are only hints, a time
//! window open at one end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use icesat2::granule::reader::ReaderFile;
use icesat2::granule::{BEAMS, GranuleName, Hdf5Source, Node};
use icesat2::store;
use icesat2::synth::SynthOptions;

use super::servers::{KeyRing, Listed, NasaConfig, NasaServer, Probe, Recorded, S3Server, Sizes};
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
            layout: icesat2::synth::Layout::R006,
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
    nasa_with(config, s3_delay, &[])
}

/// `nasa`, with `extra` granules too: (a file, the name it is listed under).
fn nasa_with(config: NasaConfig, s3_delay: Duration, extra: &[(PathBuf, String)]) -> Nasa {
    let root = tempfile::tempdir().unwrap();
    let granules_dir = root.path().join("local");
    std::fs::create_dir_all(&granules_dir).unwrap();
    let mut listed = Vec::new();
    let files = granules()
        .into_iter()
        .map(|file| {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            (file, name)
        })
        .chain(extra.iter().cloned());
    for (file, name) in files {
        let parsed = GranuleName::parse(&name).unwrap();
        let key = format!(
            "ATLAS/ATL08/{}/{}/{name}",
            parsed.release,
            parsed.start.format("%Y/%m/%d")
        );
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
        local_manifest(&self.granules_dir)
    }
}

/// The manifest of the other tests over the granules in `folder`.
fn local_manifest(folder: &Path) -> String {
    format!(
        "region: {{ geojson: region.json }}\ntime: {{ start: 2019-01-01, end: 2019-12-31 }}\n{VARIABLES}source: {{ local: {{ path: {} }} }}\noutput: {{ path: out }}\n",
        folder.display()
    )
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
    assert_eq!(plan["granules"][0]["size_approximate"], true);
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
    // Keys live 2 s (refreshed at 1.6 s); 150 ms per S3 request makes the
    // run last well beyond that (about 4 s on 2 cores: a granule waits
    // about nine request times) however fast decoding gets.
    let ttl = Duration::from_secs(2);
    let config = NasaConfig {
        credentials_ttl: ttl,
        ..NasaConfig::default()
    };
    let nasa = nasa(config, Duration::from_millis(150));
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

// Credentials, bodies and paging against servers that misbehave.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use icesat2::store::auth::{EarthdataAuth, Secret};
use icesat2::store::https::{NasaClient, TokenHosts};
use url::Url;

fn token_client(token: &str, hosts: TokenHosts) -> NasaClient {
    let mut client =
        NasaClient::new(EarthdataAuth::Token(Secret::new(token)), None, hosts).unwrap();
    client.backoff = Duration::from_millis(1);
    client
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    store::runtime().block_on(future)
}

fn at(probe: &Probe, path: &str) -> Url {
    Url::parse(&format!("{}{path}", probe.url)).unwrap()
}

/// The Authorization header each request to `path` carried.
fn authorizations(probe: &Probe, path: &str) -> Vec<Option<String>> {
    probe
        .recorded()
        .iter()
        .filter(|seen| seen.path == path)
        .map(|seen| seen.header("authorization").map(str::to_string))
        .collect()
}

#[test]
fn the_token_goes_only_to_token_hosts_and_never_where_it_redirects() {
    let token = "tok-5e1f0a9b";
    let elsewhere = Probe::start(|_, _| "elsewhere".into_response());
    let target = elsewhere.url.clone();
    let data = Probe::start(move |seen: &Recorded, _| match seen.path.as_str() {
        "/away" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{target}/landed"))],
        )
            .into_response(),
        "/stay" => (StatusCode::FOUND, [(header::LOCATION, "/stayed")]).into_response(),
        _ => "data".into_response(),
    });
    // The data host is a configured endpoint; the other host is not.
    let client = token_client(
        token,
        TokenHosts::earthdata().with_urls([data.url.as_str()]),
    );
    let bearer = Some(format!("Bearer {token}"));
    for path in ["/a", "/away", "/stay"] {
        let response = block_on(client.get(&at(&data, path), None)).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    block_on(client.get(&at(&elsewhere, "/b"), None)).unwrap();
    assert_eq!(authorizations(&data, "/a"), vec![bearer.clone()]);
    assert_eq!(authorizations(&data, "/away"), vec![bearer.clone()]);
    // A redirect to another host (here: another port) carries no token;
    // one to the same origin does.
    assert_eq!(authorizations(&elsewhere, "/landed"), [None]);
    assert_eq!(authorizations(&data, "/stayed"), vec![bearer.clone()]);
    assert_eq!(authorizations(&elsewhere, "/b"), [None]);

    // The manifest's opt-in (`token_hosts`) lets it go there too.
    let port = Url::parse(&elsewhere.url).unwrap().port().unwrap();
    let opted = token_client(
        token,
        TokenHosts::earthdata()
            .with_entries(&[format!("127.0.0.1:{port}")])
            .unwrap(),
    );
    block_on(opted.get(&at(&elsewhere, "/c"), None)).unwrap();
    assert_eq!(authorizations(&elsewhere, "/c"), [bearer]);

    // The header is marked sensitive: a request printed shows no token.
    let url = at(&data, "/a");
    let request = client
        .authorize(client.http().get(url.clone()), &url)
        .build()
        .unwrap();
    assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
    assert!(!format!("{request:?}").contains(token));
}

/// Runs `icesat2 run` with every plain-http request going through `proxy`
/// (which records it), the environment holding only the given credentials.
fn run_through_proxy(work: &util::Workdir, proxy: &Probe, env: &[(&str, &str)]) -> util::Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_icesat2"));
    command
        .args(["run", "m.yaml"])
        .current_dir(work.path())
        .env("HTTP_PROXY", &proxy.url)
        .env("NETRC", work.join("no-netrc"));
    for name in [
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "EARTHDATA_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    util::Run(command.output().unwrap())
}

#[test]
fn over_plain_http_neither_the_token_nor_the_password_is_sent() {
    // The granule's name passes the track pruning, so the run fetches it:
    // from an Earthdata host, but over plain http (through a recording
    // proxy: what would have crossed the network).
    let name = std::fs::read_dir(util::tasmania_granules())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let data_url = format!("http://data.nsidc.earthdatacloud.nasa.gov/ATLAS/{name}");
    let manifest = format!(
        "region: {{ geojson: region.json }}\ntime: {{ start: 2019-01-01, end: 2019-12-31 }}\n{VARIABLES}source: {{ urls: [{data_url}] }}\noutput: {{ path: out }}\n"
    );
    let proxy = Probe::start(|seen: &Recorded, _| {
        if seen.uri.starts_with("http://urs.earthdata.nasa.gov/") {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"Earthdata Login\"")],
            )
                .into_response();
        }
        let back = url::form_urlencoded::byte_serialize(seen.uri.as_bytes()).collect::<String>();
        (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                format!("http://urs.earthdata.nasa.gov/oauth/authorize?redirect={back}"),
            )],
        )
            .into_response()
    });

    let token = "tok-7c2d9e41";
    let work = workdir(&manifest, "unused");
    let run = run_through_proxy(&work, &proxy, &[("EARTHDATA_TOKEN", token)]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let password = "pw-1b3d5f7a";
    work.write(
        "netrc",
        &format!("machine urs.earthdata.nasa.gov login alice password {password}\n"),
    );
    let netrc = work.join("netrc");
    let run_netrc = run_through_proxy(&work, &proxy, &[("NETRC", netrc.to_str().unwrap())]);
    assert_eq!(run_netrc.code(), 2, "{}", run_netrc.stderr());

    let seen = proxy.recorded();
    let to_data: Vec<&Recorded> = seen.iter().filter(|r| r.uri == data_url).collect();
    let to_edl: Vec<&Recorded> = seen
        .iter()
        .filter(|r| r.uri.starts_with("http://urs.earthdata.nasa.gov/"))
        .collect();
    // Both runs asked the data host, and followed it to Earthdata Login.
    assert!(to_data.len() >= 2, "{seen:#?}");
    assert!(to_edl.len() >= 2, "{seen:#?}");
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert_eq!(request.header("authorization"), None, "{request:?}");
        for (_, value) in &request.headers {
            assert!(
                !value.contains(token) && !value.contains(password),
                "{request:?}"
            );
        }
    }
    for output in [&run, &run_netrc] {
        assert!(!output.stderr().contains(token) && !output.stderr().contains(password));
    }
}

/// Byte `i` of the probe's objects.
fn pattern(i: u64) -> u8 {
    (i * 7 % 251) as u8
}

/// A body of `len` pattern bytes made as it is sent, counting what went
/// out; `done` is set once the body is dropped (sent or abandoned).
fn counted_body(
    len: u64,
    sent: Arc<std::sync::atomic::AtomicU64>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> axum::body::Body {
    struct Guard(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    const BLOCK: u64 = 64 * 1024;
    let stream = futures::stream::unfold((0u64, Guard(done)), move |(at, guard)| {
        let sent = sent.clone();
        async move {
            if at >= len {
                return None;
            }
            let end = (at + BLOCK).min(len);
            sent.fetch_add(end - at, Ordering::SeqCst);
            let block: Vec<u8> = (at..end).map(pattern).collect();
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(block)),
                (end, guard),
            ))
        }
    });
    axum::body::Body::from_stream(stream)
}

/// The requested `(first, last)` of a `Range: bytes=a-b` header.
fn requested(seen: &Recorded) -> (u64, u64) {
    let (a, b) = seen
        .header("range")
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn https_bodies_are_checked_against_the_range_and_never_read_past_it() {
    const WHOLE: u64 = 256 << 20;
    const SMALL: u64 = 10_000;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (body_sent, body_done) = (sent.clone(), done.clone());
    let probe = Probe::start(move |seen: &Recorded, _| {
        let (first, last) = requested(seen);
        let bytes = |a: u64, b: u64| (a..=b).map(pattern).collect::<Vec<u8>>();
        let partial = |range: String, body: Vec<u8>| {
            (
                StatusCode::PARTIAL_CONTENT,
                [(header::CONTENT_RANGE, range)],
                body,
            )
                .into_response()
        };
        match seen.path.as_str() {
            // Honest.
            "/exact" => partial(format!("bytes {first}-{last}/{SMALL}"), bytes(first, last)),
            // The range one byte further on than asked.
            "/shifted" => partial(
                format!("bytes {}-{}/{SMALL}", first + 1, last + 1),
                bytes(first + 1, last + 1),
            ),
            // A 206 with no Content-Range.
            "/unlabelled" => (StatusCode::PARTIAL_CONTENT, bytes(first, last)).into_response(),
            // The right label on a longer body.
            "/long" => partial(
                format!("bytes {first}-{last}/{SMALL}"),
                bytes(first, last + 50),
            ),
            // Range ignored: the whole (small) object.
            "/small" => bytes(0, SMALL - 1).into_response(),
            // Range ignored: 256 MiB, made as it is sent.
            _ => {
                let mut response =
                    counted_body(WHOLE, body_sent.clone(), body_done.clone()).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, WHOLE.into());
                response
            }
        }
    });
    let client = token_client("t", TokenHosts::earthdata());
    let expect = |a: u64, b: u64| (a..b).map(pattern).collect::<Vec<u8>>();

    let got = block_on(client.get_range(&at(&probe, "/exact"), 100..4100)).unwrap();
    assert_eq!(got.to_vec(), expect(100, 4100));
    assert_eq!(block_on(client.len(&at(&probe, "/exact"))).unwrap(), SMALL);
    let got = block_on(client.get_range(&at(&probe, "/small"), 2000..2500)).unwrap();
    assert_eq!(got.to_vec(), expect(2000, 2500));
    for (path, says) in [
        ("/shifted", "Content-Range 'bytes 101-200/10000'"),
        ("/unlabelled", "Content-Range (none)"),
        ("/long", "with a body of 150 bytes"),
    ] {
        let err = block_on(client.get_range(&at(&probe, path), 100..200)).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(says), "{path}: {message}");
        assert!(message.contains("bytes 100-199"), "{path}: {message}");
    }
    let err = block_on(client.get_range(&at(&probe, "/small"), 9000..10_001)).unwrap_err();
    assert!(
        err.to_string()
            .contains("sent the whole object, of 10000 bytes"),
        "{err}"
    );

    // The whole 256 MiB answer to a range: read to the range's end, then
    // the connection is dropped, and the server stops sending.
    let got = block_on(client.get_range(&at(&probe, "/whole"), 1_000_000..1_000_100)).unwrap();
    assert_eq!(got.to_vec(), expect(1_000_000, 1_000_100));
    let clock = std::time::Instant::now();
    while !done.load(Ordering::SeqCst) && clock.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(done.load(Ordering::SeqCst), "the server is still sending");
    let went = sent.load(Ordering::SeqCst);
    assert!(went < WHOLE / 4, "{went} of {WHOLE} bytes sent");
    // Its size comes from Content-Length, without reading the body.
    done.store(false, Ordering::SeqCst);
    sent.store(0, Ordering::SeqCst);
    assert_eq!(block_on(client.len(&at(&probe, "/whole"))).unwrap(), WHOLE);
    let clock = std::time::Instant::now();
    while !done.load(Ordering::SeqCst) && clock.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(done.load(Ordering::SeqCst), "the server is still sending");
    let went = sent.load(Ordering::SeqCst);
    assert!(went < WHOLE / 4, "{went} of {WHOLE} bytes sent");
}

#[test]
fn retry_after_as_an_http_date_is_waited_for() {
    let probe = Probe::start(|_, earlier| {
        if earlier == 0 {
            let when = chrono::Utc::now() + chrono::Duration::seconds(2);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    when.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                )],
            )
                .into_response()
        } else {
            "ready".into_response()
        }
    });
    // Without the date the retry would come after the 1 ms backoff.
    let client = token_client("t", TokenHosts::earthdata());
    let clock = std::time::Instant::now();
    let response = block_on(client.get(&at(&probe, "/busy"), None)).unwrap();
    let waited = clock.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(probe.recorded().len(), 2);
    // The date has whole seconds: 2 s ahead is at least 1 s ahead.
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[test]
fn a_repeated_search_after_cursor_stops_the_search_with_an_error() {
    let nasa = nasa(
        NasaConfig {
            repeat_cursor: true,
            ..NasaConfig::default()
        },
        Duration::ZERO,
    );
    // The spatial search is one query over all 4 granules: 2 pages of 3.
    let work = workdir(&nasa.cmr_manifest("https", "spatial", true), "test-token");
    let run = work.run(&["plan", "m.yaml"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        run.stderr()
            .contains("CMR-Search-After cursor it had sent before (page 2); stopped paging"),
        "{}",
        run.stderr()
    );
    assert_eq!(nasa.server.seen.searches.load(Ordering::Relaxed), 2);
}

#[test]
fn a_cut_off_or_garbled_search_page_is_asked_for_again() {
    let calm = nasa(NasaConfig::default(), Duration::ZERO);
    let rough = nasa(
        NasaConfig {
            cut_searches: vec![1, 4],
            garbled_searches: vec![2, 5],
            ..NasaConfig::default()
        },
        Duration::ZERO,
    );
    let plans: Vec<serde_json::Value> = [&calm, &rough]
        .iter()
        .map(|nasa| {
            let work = workdir(&nasa.cmr_manifest("https", "spatial", true), "test-token");
            serde_json::from_str(&work.run(&["plan", "--json", "m.yaml"]).success()).unwrap()
        })
        .collect();
    let names = |plan: &serde_json::Value| {
        plan["granules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["granule"].to_string(), g["size"].to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&plans[0]).len(), 4);
    assert_eq!(names(&plans[0]), names(&plans[1]));
    // Two pages, each asked for three times.
    assert_eq!(rough.server.seen.searches.load(Ordering::Relaxed), 6);

    // A page that never comes whole fails the plan after a few attempts.
    let broken = nasa(
        NasaConfig {
            garbled_searches: (1..=6).collect(),
            ..NasaConfig::default()
        },
        Duration::ZERO,
    );
    let work = workdir(&broken.cmr_manifest("https", "spatial", true), "test-token");
    let run = work.run(&["plan", "m.yaml"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("CMR sent a response we cannot read: a page that is not JSON"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("(6 attempts)"), "{}", run.stderr());
    assert_eq!(broken.server.seen.searches.load(Ordering::Relaxed), 6);
}

#[test]
fn keys_still_valid_are_used_when_a_refresh_fails_and_expired_ones_are_refused() {
    use icesat2::store::s3::{NsidcCredentials, S3Access};
    use object_store::ObjectStoreExt;

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("s3").join(BUCKET)).unwrap();
    let object = root.path().join("object.bin");
    let bytes: Vec<u8> = (0..5000u64).map(pattern).collect();
    std::fs::write(&object, &bytes).unwrap();
    let ring = KeyRing::default();
    let s3 = S3Server::start(&root.path().join("s3"), ring.clone(), Duration::ZERO);
    s3.upload(&ring, BUCKET, "some/object.bin", &object);
    // Keys live 6 s; after the first, the endpoint refuses.
    let server = NasaServer::start(
        NasaConfig {
            credentials_ttl: Duration::from_secs(6),
            refuse_credentials_after: Some(1),
            ..NasaConfig::default()
        },
        vec![],
        ring.clone(),
    );
    let client = token_client(
        "test-token",
        TokenHosts::earthdata().with_urls([server.url.as_str()]),
    );
    let url = Url::parse(&format!("{}/s3credentials", server.url)).unwrap();
    let credentials = Arc::new(NsidcCredentials::new(client, url));
    let access = S3Access::new(credentials.clone(), Some(s3.endpoint.clone()));
    let bucket = access.store(BUCKET).unwrap();
    let path = object_store::path::Path::from("some/object.bin");

    let first = block_on(credentials.credential()).unwrap();
    let clock = std::time::Instant::now();
    let mut read_while_refused = false;
    let failure = loop {
        assert!(
            clock.elapsed() < Duration::from_secs(15),
            "the keys never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
        match block_on(credentials.credential()) {
            Ok(held) => {
                assert_eq!(held.key_id, first.key_id);
                if server.seen.credentials_refused.load(Ordering::Relaxed) > 0
                    && !read_while_refused
                {
                    // The refresh failed; the keys held still work.
                    let got = block_on(bucket.get_range(&path, 100..200)).unwrap();
                    assert_eq!(&got[..], &bytes[100..200]);
                    read_while_refused = true;
                }
            }
            Err(err) => break err.to_string(),
        }
    };
    assert!(
        read_while_refused,
        "no refresh failed before the keys expired"
    );
    assert_eq!(credentials.fetches(), 1);
    assert!(credentials.refresh_failures() >= 1);
    assert!(
        failure.contains("new ones could not be had") && failure.contains("503"),
        "{failure}"
    );
    assert!(failure.contains("the S3 keys expire"), "{failure}");
    for secret in ring.secrets() {
        assert!(!failure.contains(&secret), "{failure}");
    }
    // And S3 reads now fail with that reason.
    let err = block_on(bucket.get_range(&path, 0..10)).unwrap_err();
    assert!(
        err.to_string().contains("new ones could not be had"),
        "{err}"
    );
}

#[test]
fn token_hosts_entries_are_checked_when_planning() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let manifest = |hosts: &str| {
        nasa.cmr_manifest("https", "rgt", true).replace(
            "    cmr_url:",
            &format!("    token_hosts: {hosts}\n    cmr_url:"),
        )
    };
    let good = workdir(
        &manifest("[mirror.example.org, \"*.daac.example.net\", \"127.0.0.1:9\"]"),
        "test-token",
    );
    let plan: serde_json::Value =
        serde_json::from_str(&good.run(&["plan", "--json", "m.yaml"]).success()).unwrap();
    assert_eq!(plan["granules"].as_array().unwrap().len(), 4);
    let searches = nasa.server.seen.searches.load(Ordering::Relaxed);
    let bad = workdir(
        &manifest("[mirror.example.org, \"https://other.example.org\"]"),
        "test-token",
    );
    let run = bad.run(&["plan", "m.yaml"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains(
            "source.cmr.token_hosts: 'https://other.example.org' is not a host, host:port or *.domain"
        ),
        "{}",
        run.stderr()
    );
    // Refused before CMR is asked.
    assert_eq!(nasa.server.seen.searches.load(Ordering::Relaxed), searches);
}

// NASA's catalog as it is: revisions, releases, sizes, open time windows.

/// The synthetic granules near the region, by name.
fn tasmania() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(util::tasmania_granules())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn file_name(file: &Path) -> String {
    file.file_name().unwrap().to_string_lossy().into_owned()
}

/// `plan --json` of the workdir's manifest.
fn plan_json(work: &Workdir) -> serde_json::Value {
    serde_json::from_str(&work.run(&["plan", "--json", "m.yaml"]).success()).unwrap()
}

/// (granule, skip reason) of each planned granule.
fn planned(plan: &serde_json::Value) -> Vec<(String, Option<String>)> {
    plan["granules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["granule"].as_str().unwrap().to_string(),
                g["skip"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The names a plan reads.
fn to_read(plan: &serde_json::Value) -> Vec<String> {
    planned(plan)
        .into_iter()
        .filter(|(_, skip)| skip.is_none())
        .map(|(name, _)| name)
        .collect()
}

/// The run report in `out/_runs` (the one not hidden).
fn run_report(out: &Path) -> serde_json::Value {
    let report = std::fs::read_dir(out.join("_runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.extension().is_some_and(|ext| ext == "json") && !file_name(path).starts_with('.')
        })
        .expect("a run report");
    serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap()
}

#[test]
fn only_the_newest_revision_of_a_granule_is_read_from_cmr_local_and_urls() {
    let tasmania = tasmania();
    let old = file_name(&tasmania[0]);
    assert!(old.ends_with("_006_01.h5"), "{old}");
    let new = old.replace("_006_01.h5", "_006_02.h5");
    let reason = format!("superseded by revision 02 ({new})");
    // CMR lists both revisions (the same bytes under two names).
    let nasa = nasa_with(
        NasaConfig::default(),
        Duration::ZERO,
        &[(tasmania[0].clone(), new.clone())],
    );
    // What a run must give: revision 02 in place of 01.
    let reference = workdir(&local_manifest(Path::new("granules")), "unused");
    std::fs::create_dir_all(reference.join("granules")).unwrap();
    std::fs::copy(&tasmania[0], reference.join("granules").join(&new)).unwrap();
    for file in &tasmania[1..] {
        std::fs::copy(file, reference.join("granules").join(file_name(file))).unwrap();
    }
    run(&reference);

    // CMR.
    let cmr = workdir(&nasa.cmr_manifest("https", "rgt", true), "test-token");
    let plan = plan_json(&cmr);
    let listed = planned(&plan);
    assert_eq!(listed.len(), 5, "{plan}");
    assert!(
        listed.contains(&(old.clone(), Some(reason.clone()))),
        "{plan}"
    );
    assert!(listed.contains(&(new.clone(), None)), "{plan}");
    assert_eq!(to_read(&plan).len(), 4);
    let text = cmr.run(&["plan", "m.yaml"]).success();
    assert!(
        text.contains(&format!("  skip  {old}  ({reason})")),
        "{text}"
    );
    assert!(text.contains(&format!("  read  {new}  (~")), "{text}");
    run(&cmr);
    let rows = util::same_rows(&reference.join("out"), &cmr.join("out"));
    assert!(rows > 100, "{rows}");
    let report = run_report(&cmr.join("out"));
    assert_eq!(report["granules"]["done"], 4, "{report}");
    assert_eq!(report["granules"]["skipped"], 1, "{report}");
    assert_eq!(
        report["skipped_granules"],
        serde_json::json!([{ "granule": old, "reason": reason }])
    );

    // A local folder holding both (and the decoys, pruned by track).
    let local = workdir(&nasa.local_manifest(), "unused");
    let plan = plan_json(&local);
    assert!(
        planned(&plan).contains(&(old.clone(), Some(reason.clone()))),
        "{plan}"
    );
    assert_eq!(to_read(&plan).len(), 4, "{plan}");
    run(&local);
    assert_eq!(
        util::same_rows(&reference.join("out"), &local.join("out")),
        rows
    );

    // A list of URLs: the newer listed first.
    let urls = format!(
        "region: {{ geojson: region.json }}\n{VARIABLES}source: {{ urls: [{}, file://{}] }}\noutput: {{ path: out }}\n",
        nasa.granules_dir.join(&new).display(),
        nasa.granules_dir.join(&old).display()
    );
    let plan = plan_json(&workdir(&urls, "unused"));
    assert_eq!(
        planned(&plan),
        vec![(new.clone(), None), (old.clone(), Some(reason.clone()))]
    );
}

/// The CMR manifest of the other tests without its `collection`, with `lines` before it.
fn release_manifest(nasa: &Nasa, lines: &str) -> String {
    let manifest = nasa.cmr_manifest("https", "rgt", true);
    let without = manifest.replace("    collection: C2613553260-NSIDC_CPRD\n", "");
    assert_ne!(without, manifest);
    format!("{lines}{without}")
}

#[test]
fn without_a_release_the_newest_cmr_lists_is_read_and_a_release_cmr_lacks_is_an_error() {
    let tasmania = tasmania();
    let renamed = |file: &Path, release: &str| {
        file_name(file).replace("_006_01.h5", &format!("_{release}_01.h5"))
    };
    // Release 007 of two granules, 005 of one; 006 of all four.
    let extra = vec![
        (tasmania[0].clone(), renamed(&tasmania[0], "005")),
        (tasmania[1].clone(), renamed(&tasmania[1], "007")),
        (tasmania[2].clone(), renamed(&tasmania[2], "007")),
    ];
    // Pages of two: the three collections come in two pages.
    let nasa = nasa_with(
        NasaConfig {
            max_page: 2,
            ..NasaConfig::default()
        },
        Duration::ZERO,
        &extra,
    );
    let seen = &nasa.server.seen;

    // No release: release 007, the newest.
    let newest = workdir(&release_manifest(&nasa, ""), "test-token");
    let plan = plan_json(&newest);
    assert_eq!(plan["release"], "007", "{plan}");
    assert_eq!(
        plan["collection"],
        "C3565574177-NSIDC_CPRD (ATL08 version 007, the newest CMR lists)"
    );
    assert_eq!(to_read(&plan), vec![extra[1].1.clone(), extra[2].1.clone()]);
    assert_eq!(seen.collection_searches.load(Ordering::Relaxed), 2);
    assert_eq!(seen.param("collections", "short_name"), ["ATL08", "ATL08"]);
    assert_eq!(
        seen.param("collections", "provider"),
        ["NSIDC_CPRD", "NSIDC_CPRD"]
    );
    assert_eq!(seen.param("collections", "has_granules"), ["true", "true"]);
    let concepts = seen.param("granules", "collection_concept_id");
    assert!(!concepts.is_empty());
    assert!(
        concepts.iter().all(|id| id == "C3565574177-NSIDC_CPRD"),
        "{concepts:?}"
    );
    let text = newest.run(&["plan", "m.yaml"]).success();
    assert!(
        text.contains(
            "  collection C3565574177-NSIDC_CPRD (ATL08 version 007, the newest CMR lists)"
        ),
        "{text}"
    );
    // Its rows are those of the two 007 granules.
    run(&newest);
    let reference = workdir(&local_manifest(Path::new("granules")), "unused");
    std::fs::create_dir_all(reference.join("granules")).unwrap();
    for (file, name) in &extra[1..] {
        std::fs::copy(file, reference.join("granules").join(name)).unwrap();
    }
    run(&reference);
    assert!(util::same_rows(&reference.join("out"), &newest.join("out")) > 50);

    // A release given, as a number or text: that collection.
    for (release, concept, n) in [
        ("6", "C2613553260-NSIDC_CPRD", 4),
        ("\"005\"", "C2153574670-NSIDC_CPRD", 1),
    ] {
        let work = workdir(
            &release_manifest(&nasa, &format!("release: {release}\n")),
            "test-token",
        );
        let plan = plan_json(&work);
        assert_eq!(to_read(&plan).len(), n, "{plan}");
        assert!(
            plan["collection"].as_str().unwrap().starts_with(concept),
            "{plan}"
        );
        assert_eq!(
            seen.param("granules", "collection_concept_id")
                .last()
                .unwrap(),
            concept
        );
    }

    // A release CMR has no collection with granules for: exit 1, the
    // versions it has named, no granule searched.
    let searches = seen.searches.load(Ordering::Relaxed);
    let work = workdir(&release_manifest(&nasa, "release: 9\n"), "test-token");
    let run = work.run(&["plan", "m.yaml"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(run.stderr().trim().lines().count(), 1, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("m.yaml: release: CMR has no ATL08 release 009; it has 005, 006, 007"),
        "{}",
        run.stderr()
    );
    assert_eq!(seen.searches.load(Ordering::Relaxed), searches);
    let run = work.run(&["run", "m.yaml"]);
    assert_eq!(run.code(), 1);
    assert!(!work.join("out").exists());

    // A provider CMR has no ATL08 collection at.
    let work = workdir(
        &release_manifest(&nasa, "").replace("  cmr:\n", "  cmr:\n    provider: NSIDC_ECS\n"),
        "test-token",
    );
    let run = work.run(&["plan", "m.yaml"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains(
            "m.yaml: source.cmr: CMR has no ATL08 collection with granules at provider NSIDC_ECS"
        ),
        "{}",
        run.stderr()
    );

    // An explicit collection is searched as given, without asking for collections.
    let collection_searches = seen.collection_searches.load(Ordering::Relaxed);
    let work = workdir(&nasa.cmr_manifest("https", "rgt", true), "test-token");
    let plan = plan_json(&work);
    assert_eq!(to_read(&plan).len(), 4, "{plan}");
    assert_eq!(plan["release"], serde_json::Value::Null);
    assert_eq!(
        seen.collection_searches.load(Ordering::Relaxed),
        collection_searches
    );
}

#[test]
fn sizes_in_cmr_records_are_hints_and_odd_ones_fail_nothing() {
    // Record by record: MB rounded to 0.1, "NA", text and a negative
    // size, no size at all.
    let nasa = nasa(
        NasaConfig {
            sizes: Sizes::Varied,
            ..NasaConfig::default()
        },
        Duration::ZERO,
    );
    let local = workdir(&nasa.local_manifest(), "unused");
    run(&local);
    for access in ["https", "s3"] {
        let work = workdir(&nasa.cmr_manifest(access, "spatial", true), "test-token");
        let plan = plan_json(&work);
        let granules = plan["granules"].as_array().unwrap();
        assert_eq!(granules.len(), 4, "{plan}");
        assert!(granules.iter().all(|g| g["skip"].is_null()), "{plan}");
        let bytes = std::fs::metadata(
            nasa.granules_dir
                .join(granules[0]["granule"].as_str().unwrap()),
        )
        .unwrap()
        .len();
        let rounded = ((bytes as f64 / 1e5).round() * 1e5) as u64;
        assert_ne!(rounded, bytes);
        assert_eq!(granules[0]["size"], rounded, "{plan}");
        assert_eq!(granules[0]["size_approximate"], true);
        for granule in &granules[1..] {
            assert!(granule["size"].is_null(), "{granule}");
            assert!(granule["size_approximate"].is_null(), "{granule}");
        }
        let text = work.run(&["plan", "m.yaml"]).success();
        assert!(
            text.contains(&format!("({}{:.1} MB)", "~", rounded as f64 / 1e6)),
            "{text}"
        );
        // The reads never take a hint for the object's length.
        run(&work);
        assert!(util::same_rows(&local.join("out"), &work.join("out")) > 100);
    }
}

#[test]
fn a_time_window_open_at_one_end_sends_cmr_a_valid_temporal() {
    let nasa = nasa(NasaConfig::default(), Duration::ZERO);
    let seen = &nasa.server.seen;
    let names: Vec<String> = tasmania().iter().map(|file| file_name(file)).collect();
    // Two granules in April 2019, two in July.
    assert!(names[0].contains("_201904") && names[1].contains("_201904"));
    assert!(names[2].contains("_201907") && names[3].contains("_201907"));
    let window = "time: { start: 2019-01-01, end: 2019-12-31 }";
    for (time, temporal, kept) in [
        (
            "time: { end: 2019-05-31 }",
            ",2019-05-31T23:59:59Z",
            &names[..2],
        ),
        (
            "time: { start: 2019-07-01 }",
            "2019-07-01T00:00:00Z,",
            &names[2..],
        ),
        (
            "time: { start: 2019-04-20T00:00:00Z }",
            "2019-04-20T00:00:00Z,",
            &names[1..],
        ),
    ] {
        let before = seen.param("granules", "temporal").len();
        let manifest = nasa.cmr_manifest("https", "rgt", true);
        assert!(manifest.contains(window));
        let work = workdir(&manifest.replace(window, time), "test-token");
        let plan = plan_json(&work);
        assert_eq!(to_read(&plan), kept, "{time}: {plan}");
        let sent = seen.param("granules", "temporal");
        assert!(sent.len() > before, "{time}");
        assert!(
            sent[before..].iter().all(|sent| sent == temporal),
            "{time}: {sent:?}"
        );
        // The same window over local files skips the others by name.
        let work = workdir(&nasa.local_manifest().replace(window, time), "unused");
        let plan = plan_json(&work);
        assert_eq!(to_read(&plan), kept, "{time}: {plan}");
        assert!(
            planned(&plan)
                .iter()
                .filter(|(name, _)| names.contains(name) && !kept.contains(name))
                .all(|(_, skip)| skip.as_deref() == Some("outside the time window")),
            "{plan}"
        );
    }
}
