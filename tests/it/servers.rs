//! NASA-shaped servers on loopback: a real S3 protocol server (s3s + s3s-fs)
//! whose keys come from an s3credentials endpoint and expire, and one HTTP
//! server with CMR's granule search (UMM JSON, name patterns, temporal,
//! search-after paging, token check, injected 5xx and 429, pages cut off
//! or garbled, a cursor repeated), the s3credentials endpoint (which can
//! start refusing), HTTPS data with range requests and bearer tokens, and an
//! Earthdata Login stand-in for the `.netrc` redirect flow. The CMR side
//! also lists collections (`collections.umm_json`: UMM-C items with
//! concept ids and versions, `has_granules`), keeps each granule to the
//! collection of its release, refuses a `temporal` CMR would refuse, and
//! can write sizes as real records do (rounded MB, `NA`, missing). `Probe` is a
//! scripted HTTP server that records every request it gets (also as a
//! proxy: what would have gone on the wire).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Start a tokio runtime on its own thread for servers that outlive a test's body.
fn server_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// S3 keys handed out by the credentials endpoint, valid until their expiry.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl KeyRing {
    pub fn issue(&self, ttl: Duration) -> (String, String) {
        let n = self.keys.lock().unwrap().len();
        let access = format!("AKIATEST{n:08}");
        let secret = format!("secret-{n}-{}", std::process::id());
        self.keys
            .lock()
            .unwrap()
            .insert(access.clone(), (secret.clone(), Instant::now() + ttl));
        (access, secret)
    }

    /// Every secret handed out so far.
    pub fn secrets(&self) -> Vec<String> {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(k, (s, _))| [k.clone(), s.clone()])
            .collect()
    }
}

struct ExpiringAuth {
    ring: KeyRing,
    delay: Duration,
    requests: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for ExpiringAuth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let keys = self.ring.keys.lock().unwrap();
        match keys.get(access_key) {
            Some((secret, expiry)) if Instant::now() < *expiry => Ok(secret.as_str().into()),
            Some(_) => Err(s3s::s3_error!(ExpiredToken, "the credentials expired")),
            None => Err(s3s::s3_error!(InvalidAccessKeyId)),
        }
    }
}

/// Injected failures: requests for an object whose key contains the text
/// get 503 Slow Down, as many times as the count says.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<(String, u32)>>>);

impl Faults {
    pub fn fail(&self, key_contains: &str, times: u32) {
        self.0
            .lock()
            .unwrap()
            .push((key_contains.to_string(), times));
    }

    /// Failures still to serve.
    pub fn remaining(&self) -> u32 {
        self.0.lock().unwrap().iter().map(|(_, n)| n).sum()
    }
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Faults {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        if let s3s::path::S3Path::Object { key, .. } = cx.s3_path() {
            let mut faults = self.0.lock().unwrap();
            if let Some((_, n)) = faults
                .iter_mut()
                .find(|(text, n)| *n > 0 && key.contains(text.as_str()))
            {
                *n -= 1;
                return Err(s3s::s3_error!(SlowDown, "injected fault"));
            }
        }
        Ok(())
    }
}

/// A running S3 server over a folder (one subfolder per bucket).
pub struct S3Server {
    pub endpoint: String,
    pub requests: Arc<AtomicU64>,
    pub faults: Faults,
}

impl S3Server {
    pub fn start(root: &Path, ring: KeyRing, delay: Duration) -> S3Server {
        let requests = Arc::new(AtomicU64::new(0));
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(ExpiringAuth {
            ring,
            delay,
            requests: requests.clone(),
        });
        let faults = Faults::default();
        builder.set_access(faults.clone());
        let service = builder.build();
        let listener = server_runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        server_runtime().spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // As S3 does: without it, a response written in two parts
                // waits for the client's delayed ACK (40 ms on Linux).
                let _ = socket.set_nodelay(true);
                let connection = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{address}"),
            requests,
            faults,
        }
    }
}

impl S3Server {
    /// Stores `file` as `bucket/key` with a PUT, so the server records the
    /// object's ETag (s3s-fs otherwise hashes the whole object on every GET,
    /// which would make each range request cost a full read of the file).
    pub fn upload(&self, ring: &KeyRing, bucket: &str, key: &str, file: &Path) {
        let (access, secret) = ring.issue(Duration::from_secs(3600));
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-west-2")
            .with_access_key_id(access)
            .with_secret_access_key(secret)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .build()
            .unwrap();
        let bytes = std::fs::read(file).unwrap();
        server_runtime()
            .block_on(object_store::ObjectStoreExt::put(
                &store,
                &object_store::path::Path::from(key),
                bytes.into(),
            ))
            .unwrap();
    }
}

/// One granule the CMR server knows.
#[derive(Clone)]
pub struct Listed {
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub file: PathBuf,
    pub size: u64,
    /// [west, south, east, north] of its segments, for spatial searches.
    pub bbox: [f64; 4],
}

/// Behaviour knobs of the NASA server.
#[derive(Clone)]
pub struct NasaConfig {
    pub token: String,
    pub netrc_login: Option<(String, String)>,
    pub credentials_ttl: Duration,
    /// Largest page served, whatever the client asks for (forces paging).
    pub max_page: usize,
    /// Search requests numbered here (from 1) fail with 503.
    pub fail_searches: Vec<u64>,
    /// Search requests numbered here get 429 with Retry-After: 1.
    pub throttle_searches: Vec<u64>,
    /// Search requests numbered here get a 200 whose connection is closed
    /// half way through the body (its Content-Length is the whole).
    pub cut_searches: Vec<u64>,
    /// Search requests numbered here get a 200 with the first half of the
    /// JSON only, as a complete body.
    pub garbled_searches: Vec<u64>,
    /// Every page names the first page's last granule as the next
    /// `CMR-Search-After` cursor (a client that trusts it pages forever).
    pub repeat_cursor: bool,
    /// The s3credentials endpoint answers 503 once it has issued this many keys.
    pub refuse_credentials_after: Option<u64>,
    /// ATL08 collections of provider NSIDC_CPRD: (concept id, version).
    /// A granule belongs to the collection of its name's release.
    pub collections: Vec<(String, String)>,
    /// How records give a granule's size.
    pub sizes: Sizes,
}

/// How the CMR records give sizes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sizes {
    /// `SizeInBytes`, exact.
    Exact,
    /// Granule by granule in turn (by its place among a search's matches):
    /// `Size` in MB rounded to 0.1 (after an `.iso.xml` entry); `Size` 0
    /// with `SizeUnit: "NA"`; text for `SizeInBytes` and a negative
    /// `Size`; no `ArchiveAndDistributionInformation`.
    Varied,
}

/// The default ATL08 collections: releases 005, 006 and 007.
pub fn atl08_collections() -> Vec<(String, String)> {
    [
        ("C2153574670-NSIDC_CPRD", "005"),
        ("C2613553260-NSIDC_CPRD", "006"),
        ("C3565574177-NSIDC_CPRD", "007"),
    ]
    .iter()
    .map(|(id, version)| (id.to_string(), version.to_string()))
    .collect()
}

impl Default for NasaConfig {
    fn default() -> Self {
        NasaConfig {
            token: "test-token".into(),
            netrc_login: None,
            credentials_ttl: Duration::from_secs(3600),
            max_page: 3,
            fail_searches: vec![],
            throttle_searches: vec![],
            cut_searches: vec![],
            garbled_searches: vec![],
            repeat_cursor: false,
            refuse_credentials_after: None,
            collections: atl08_collections(),
            sizes: Sizes::Exact,
        }
    }
}

/// A request's query parameters, in order.
pub type Params = Vec<(String, String)>;

/// Counters of what the server saw.
#[derive(Default)]
pub struct Seen {
    pub searches: AtomicU64,
    pub credentials: AtomicU64,
    /// s3credentials requests refused (`refuse_credentials_after`).
    pub credentials_refused: AtomicU64,
    pub data: AtomicU64,
    pub edl_logins: AtomicU64,
    /// Authorization headers that reached the data route carrying the netrc password.
    pub password_leaks: AtomicU64,
    pub collection_searches: AtomicU64,
    /// Every search's parameters, in order: (`granules` or `collections`, parameters).
    pub queries: Mutex<Vec<(String, Params)>>,
}

impl Seen {
    /// The values of parameter `key` in every search of `kind` (`granules`, `collections`).
    pub fn param(&self, kind: &str, key: &str) -> Vec<String> {
        self.queries
            .lock()
            .unwrap()
            .iter()
            .filter(|(seen, _)| seen == kind)
            .flat_map(|(_, params)| params.iter().filter(|(k, _)| k == key))
            .map(|(_, value)| value.clone())
            .collect()
    }
}

struct NasaState {
    config: NasaConfig,
    granules: Vec<Listed>,
    ring: KeyRing,
    seen: Arc<Seen>,
    base: Mutex<String>,
    edl: Mutex<String>,
    sessions: Mutex<Vec<String>>,
}

/// A running NASA-shaped server.
pub struct NasaServer {
    pub url: String,
    pub edl_url: String,
    pub seen: Arc<Seen>,
}

impl NasaServer {
    pub fn start(config: NasaConfig, granules: Vec<Listed>, ring: KeyRing) -> NasaServer {
        let seen = Arc::new(Seen::default());
        let state = Arc::new(NasaState {
            config,
            granules,
            ring,
            seen: seen.clone(),
            base: Mutex::new(String::new()),
            edl: Mutex::new(String::new()),
            sessions: Mutex::new(vec![]),
        });
        let app = Router::new()
            .route("/search/granules.umm_json", get(search).post(search_form))
            .route("/search/collections.umm_json", get(collections))
            .route("/s3credentials", get(credentials))
            .route("/data/{*path}", get(data))
            .route("/login", get(login_return))
            .with_state(state.clone());
        let edl = Router::new()
            .route("/oauth/authorize", get(edl_authorize))
            .with_state(state.clone());
        let (address, edl_address) = server_runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let edl_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address: SocketAddr = listener.local_addr().unwrap();
            let edl_address: SocketAddr = edl_listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            tokio::spawn(async move { axum::serve(edl_listener, edl).await.unwrap() });
            (address, edl_address)
        });
        *state.base.lock().unwrap() = format!("http://{address}");
        *state.edl.lock().unwrap() = format!("http://{edl_address}");
        NasaServer {
            url: format!("http://{address}"),
            edl_url: format!("http://{edl_address}"),
            seen,
        }
    }
}

fn bearer_ok(state: &NasaState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {}", state.config.token))
}

fn errors(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "errors": [message] }).to_string(),
    )
        .into_response()
}

/// `*` and `?` glob match.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

async fn search_form(
    State(state): State<Arc<NasaState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    run_search(&state, &headers, params)
}

async fn search(
    State(state): State<Arc<NasaState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    run_search(&state, &headers, params)
}

/// The release of a listed granule (from its name).
fn release_of(granule: &Listed) -> String {
    icesat2::granule::GranuleName::parse(&granule.name)
        .map(|name| name.release)
        .unwrap_or_default()
}

/// CMR's collection search: UMM-C items of the ATL08 collections at
/// NSIDC_CPRD (all, or those with granules when `has_granules=true`),
/// paged by `CMR-Search-After` like granules.
async fn collections(
    State(state): State<Arc<NasaState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    state
        .seen
        .collection_searches
        .fetch_add(1, Ordering::Relaxed);
    state
        .seen
        .queries
        .lock()
        .unwrap()
        .push(("collections".into(), params.clone()));
    if headers.contains_key(header::AUTHORIZATION) && !bearer_ok(&state, &headers) {
        return errors(StatusCode::UNAUTHORIZED, "Token does not exist");
    }
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let page_size: usize = get("page_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .min(state.config.max_page);
    let matching: Vec<&(String, String)> = state
        .config
        .collections
        .iter()
        .filter(|_| get("short_name").is_none_or(|name| name == "ATL08"))
        .filter(|_| get("provider").is_none_or(|provider| provider == "NSIDC_CPRD"))
        .filter(|(_, version)| get("version").is_none_or(|wanted| wanted == version))
        .filter(|(_, version)| {
            get("has_granules") != Some("true")
                || state.granules.iter().any(|g| &release_of(g) == version)
        })
        .collect();
    let after = headers
        .get("CMR-Search-After")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string()
        });
    let start = match &after {
        Some(after) => matching
            .iter()
            .position(|(id, _)| id == after)
            .map_or(matching.len(), |at| at + 1),
        None => 0,
    };
    let page: Vec<&(String, String)> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .copied()
        .collect();
    let items: Vec<serde_json::Value> = page
        .iter()
        .map(|(id, version)| {
            let number: u32 = version.parse().unwrap_or(0);
            serde_json::json!({
                "meta": {
                    "concept-type": "collection",
                    "concept-id": id,
                    "provider-id": "NSIDC_CPRD",
                    "native-id": format!("ATL08_{version}"),
                    "revision-id": 12,
                    "format": "application/vnd.nasa.cmr.umm+json",
                    "has-granules": state.granules.iter().any(|g| &release_of(g) == version)
                },
                "umm": {
                    "ShortName": "ATL08",
                    "Version": version,
                    "EntryTitle": format!("ATLAS/ICESat-2 L3A Land and Vegetation Height V{number:03}"),
                    "DOI": { "DOI": format!("10.5067/ATLAS/ATL08.{number:03}") },
                    "ProcessingLevel": { "Id": "3A" },
                    "DirectDistributionInformation": {
                        "Region": "us-west-2",
                        "S3BucketAndObjectPrefixNames": ["nsidc-cumulus-prod-protected/ATLAS/ATL08"],
                        "S3CredentialsAPIEndpoint": "https://data.nsidc.earthdatacloud.nasa.gov/s3credentials"
                    }
                }
            })
        })
        .collect();
    let body = serde_json::json!({ "hits": matching.len(), "took": 2, "items": items }).to_string();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/vnd.nasa.cmr.umm_results+json".parse().unwrap(),
    );
    response
        .headers_mut()
        .insert("CMR-Hits", matching.len().to_string().parse().unwrap());
    if start + page.len() < matching.len()
        && let Some((last, _)) = page.last()
    {
        response
            .headers_mut()
            .insert("CMR-Search-After", format!("[\"{last}\"]").parse().unwrap());
    }
    response
}

/// An instant of a `temporal`; `None` for an open end.
type End = Option<chrono::DateTime<chrono::FixedOffset>>;

/// CMR's `temporal`: `start,end` with either end (not both) left open;
/// `None` (a 400 from CMR) when it is not that.
fn parse_temporal(text: &str) -> Option<(End, End)> {
    let (start, end) = text.split_once(',')?;
    let instant = |text: &str| -> Option<End> {
        if text.is_empty() {
            return Some(None);
        }
        chrono::DateTime::parse_from_rfc3339(text).ok().map(Some)
    };
    let (start, end) = (instant(start)?, instant(end)?);
    (start.is_some() || end.is_some()).then_some((start, end))
}

fn run_search(state: &NasaState, headers: &HeaderMap, params: Vec<(String, String)>) -> Response {
    let number = state.seen.searches.fetch_add(1, Ordering::Relaxed) + 1;
    state
        .seen
        .queries
        .lock()
        .unwrap()
        .push(("granules".into(), params.clone()));
    if state.config.fail_searches.contains(&number) {
        return errors(
            StatusCode::SERVICE_UNAVAILABLE,
            "CMR is down for maintenance",
        );
    }
    if state.config.throttle_searches.contains(&number) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response();
    }
    // Public collections need no token, but a token that is sent must be valid.
    if headers.contains_key(header::AUTHORIZATION) && !bearer_ok(state, headers) {
        return errors(StatusCode::UNAUTHORIZED, "Token does not exist");
    }
    let get = |key: &str| {
        params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let concept = get("collection_concept_id");
    let short_name = get("short_name");
    // The release the collection holds; CMR lists nothing for a concept id it does not know.
    let release: Option<String> = match (concept.first(), short_name.first()) {
        (Some(id), _) => Some(
            state
                .config
                .collections
                .iter()
                .find(|(known, _)| known == id)
                .map(|(_, version)| version.clone())
                .unwrap_or_else(|| "none".into()),
        ),
        (None, Some(name)) if name == "ATL08" => get("version").first().cloned(),
        _ => return errors(StatusCode::BAD_REQUEST, "Collection must be given"),
    };
    let patterns = get("readable_granule_name[]");
    if patterns.len() > 5 && patterns.iter().any(|p| p.starts_with('*')) {
        return errors(
            StatusCode::BAD_REQUEST,
            "at most 5 leading wildcard patterns",
        );
    }
    let temporal = match get("temporal").first() {
        Some(text) => match parse_temporal(text) {
            Some(window) => Some(window),
            None => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &format!("temporal [{text}] is not a valid datetime range"),
                );
            }
        },
        None => None,
    };
    let polygons = get("polygon[]");
    let page_size: usize = get("page_size")
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .min(state.config.max_page);
    let after = headers
        .get("CMR-Search-After")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string()
        });
    let mut matching: Vec<&Listed> = state
        .granules
        .iter()
        .filter(|g| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| glob(p.as_bytes(), g.name.as_bytes()))
        })
        .filter(|g| {
            release
                .as_ref()
                .is_none_or(|release| &release_of(g) == release)
        })
        .filter(|g| {
            let Some((start, end)) = &temporal else {
                return true;
            };
            let name = icesat2::granule::GranuleName::parse(&g.name).unwrap();
            end.is_none_or(|end| name.start <= end)
                && start.is_none_or(|start| name.start + chrono::Duration::seconds(600) >= start)
        })
        .filter(|g| {
            polygons.is_empty()
                || polygons.iter().any(|polygon| {
                    let numbers: Vec<f64> =
                        polygon.split(',').map(|n| n.parse().unwrap()).collect();
                    let (lons, lats): (Vec<f64>, Vec<f64>) =
                        numbers.chunks(2).map(|p| (p[0], p[1])).unzip();
                    let [w, s, e, n] = g.bbox;
                    lons.iter().cloned().fold(f64::MAX, f64::min) <= e
                        && lons.iter().cloned().fold(f64::MIN, f64::max) >= w
                        && lats.iter().cloned().fold(f64::MAX, f64::min) <= n
                        && lats.iter().cloned().fold(f64::MIN, f64::max) >= s
                })
        })
        .collect();
    matching.sort_by(|a, b| a.name.cmp(&b.name));
    let start = match &after {
        Some(after) => matching
            .iter()
            .position(|g| &g.name > after)
            .unwrap_or(matching.len()),
        None => 0,
    };
    let page: Vec<&Listed> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .copied()
        .collect();
    let base = state.base.lock().unwrap().clone();
    let items: Vec<serde_json::Value> = page
        .iter()
        .map(|g| {
            // The granule's place among all this search matches.
            let place = matching
                .iter()
                .position(|listed| listed.name == g.name)
                .unwrap_or(0);
            let sizes = match (state.config.sizes, place % 4) {
                (Sizes::Exact, _) => {
                    serde_json::json!([ { "Name": g.name, "SizeInBytes": g.size } ])
                }
                (Sizes::Varied, 0) => serde_json::json!([
                    { "Name": format!("{}.iso.xml", g.name.trim_end_matches(".h5")), "Size": 0.01, "SizeUnit": "MB" },
                    { "Name": g.name, "Size": (g.size as f64 / 1e5).round() / 10.0, "SizeUnit": "MB",
                      "Checksum": { "Value": "0", "Algorithm": "MD5" } }
                ]),
                (Sizes::Varied, 1) => {
                    serde_json::json!([ { "Name": g.name, "Size": 0, "SizeUnit": "NA" } ])
                }
                (Sizes::Varied, 2) => serde_json::json!([
                    { "Name": g.name, "SizeInBytes": "n/a", "Size": -3.2, "SizeUnit": "MB" }
                ]),
                (Sizes::Varied, _) => serde_json::Value::Null,
            };
            let data_granule = if sizes.is_null() {
                serde_json::json!({ "DayNightFlag": "Unspecified" })
            } else {
                serde_json::json!({ "DayNightFlag": "Unspecified", "ArchiveAndDistributionInformation": sizes })
            };
            serde_json::json!({ "meta": { "concept-id": format!("G-{}", g.name) }, "umm": {
                "GranuleUR": g.name,
                "RelatedUrls": [
                    { "URL": format!("{base}/data/{}/{}", g.bucket, g.key), "Type": "GET DATA" },
                    { "URL": format!("s3://{}/{}", g.bucket, g.key), "Type": "GET DATA VIA DIRECT ACCESS" },
                    { "URL": format!("s3://{}/{}.iso.xml", g.bucket, g.key.trim_end_matches(".h5")), "Type": "GET DATA VIA DIRECT ACCESS" },
                    { "URL": format!("{base}/data/{}/{}.dmrpp", g.bucket, g.key), "Type": "EXTENDED METADATA" }
                ],
                "DataGranule": data_granule
            }})
        })
        .collect();
    let body = serde_json::json!({ "hits": matching.len(), "took": 1, "items": items }).to_string();
    let half = body.as_bytes()[..body.len() / 2].to_vec();
    let mut response = if state.config.cut_searches.contains(&number) {
        // The first half, then an error: the server drops the connection
        // short of the Content-Length it announced.
        let stream = futures::stream::iter([
            Ok::<_, std::io::Error>(bytes::Bytes::from(half)),
            Err(std::io::Error::other("cut off")),
        ]);
        let mut response = axum::body::Body::from_stream(stream).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, body.len().into());
        response
    } else if state.config.garbled_searches.contains(&number) {
        half.into_response()
    } else {
        body.into_response()
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/vnd.nasa.cmr.umm_results+json".parse().unwrap(),
    );
    response
        .headers_mut()
        .insert("CMR-Hits", matching.len().to_string().parse().unwrap());
    let cursor = if state.config.repeat_cursor {
        matching
            .get(page_size.saturating_sub(1))
            .filter(|_| !page.is_empty())
    } else {
        page.last().filter(|_| start + page.len() < matching.len())
    };
    if let Some(last) = cursor {
        response.headers_mut().insert(
            "CMR-Search-After",
            format!("[\"{}\"]", last.name).parse().unwrap(),
        );
    }
    response
}

async fn credentials(State(state): State<Arc<NasaState>>, headers: HeaderMap) -> Response {
    if !bearer_ok(&state, &headers) && !session_ok(&state, &headers) {
        return edl_redirect(&state, "/s3credentials");
    }
    if let Some(limit) = state.config.refuse_credentials_after
        && state.seen.credentials.load(Ordering::Relaxed) >= limit
    {
        state
            .seen
            .credentials_refused
            .fetch_add(1, Ordering::Relaxed);
        return errors(StatusCode::SERVICE_UNAVAILABLE, "s3credentials is down");
    }
    state.seen.credentials.fetch_add(1, Ordering::Relaxed);
    let (access, secret) = state.ring.issue(state.config.credentials_ttl);
    let expiration =
        chrono::Utc::now() + chrono::Duration::from_std(state.config.credentials_ttl).unwrap();
    let body = serde_json::json!({
        "accessKeyId": access,
        "secretAccessKey": secret,
        "sessionToken": format!("session-{access}"),
        "expiration": expiration.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn session_ok(state: &NasaState, headers: &HeaderMap) -> bool {
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    let sessions = state.sessions.lock().unwrap();
    sessions
        .iter()
        .any(|session| cookies.contains(&format!("session={session}")))
}

fn edl_redirect(state: &NasaState, path: &str) -> Response {
    if state.config.netrc_login.is_none() {
        return errors(StatusCode::UNAUTHORIZED, "no token");
    }
    let edl = state.edl.lock().unwrap().clone();
    let back = format!("{}{path}", state.base.lock().unwrap());
    let location = format!(
        "{edl}/oauth/authorize?redirect={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// EDL: checks Basic auth, sends the browser back to the data host's /login with a code.
async fn edl_authorize(
    State(state): State<Arc<NasaState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some((login, password)) = &state.config.netrc_login else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expected = format!("Basic {}", base64_encode(&format!("{login}:{password}")));
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Earthdata Login\"")],
        )
            .into_response();
    }
    state.seen.edl_logins.fetch_add(1, Ordering::Relaxed);
    let back = params.get("redirect").cloned().unwrap_or_default();
    let base = state.base.lock().unwrap().clone();
    let location = format!(
        "{base}/login?code=granted&back={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// The data host's login return: sets a session cookie, sends the client to where it was going.
async fn login_return(
    State(state): State<Arc<NasaState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if params.get("code").map(String::as_str) != Some("granted") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let session = format!("s{}", state.sessions.lock().unwrap().len());
    state.sessions.lock().unwrap().push(session.clone());
    let back = params.get("back").cloned().unwrap_or_default();
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, back),
            (header::SET_COOKIE, format!("session={session}; Path=/")),
        ],
    )
        .into_response()
}

fn base64_encode(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn data(
    State(state): State<Arc<NasaState>>,
    headers: HeaderMap,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    state.seen.data.fetch_add(1, Ordering::Relaxed);
    if let Some((_, password)) = &state.config.netrc_login {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if authorization.starts_with("Basic") || authorization.contains(password.as_str()) {
            state.seen.password_leaks.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !bearer_ok(&state, &headers) && !session_ok(&state, &headers) {
        return edl_redirect(&state, &format!("/data/{path}"));
    }
    let Some(granule) = state
        .granules
        .iter()
        .find(|g| format!("{}/{}", g.bucket, g.key) == path)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let bytes = std::fs::read(&granule.file).unwrap();
    let total = bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| {
            let (a, b) = v.split_once('-')?;
            let a: usize = a.parse().ok()?;
            let b: usize = if b.is_empty() {
                total - 1
            } else {
                b.parse().ok()?
            };
            Some((a, b.min(total - 1)))
        });
    match range {
        Some((a, b)) if a <= b => (
            StatusCode::PARTIAL_CONTENT,
            [(header::CONTENT_RANGE, format!("bytes {a}-{b}/{total}"))],
            bytes[a..=b].to_vec(),
        )
            .into_response(),
        _ => (StatusCode::OK, bytes).into_response(),
    }
}

/// A request as a `Probe` got it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// As sent: a path, or an absolute URL when the probe serves as a proxy.
    pub uri: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// The value of header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

type Respond = dyn Fn(&Recorded, usize) -> Response + Send + Sync;
/// What a `Probe` keeps: the requests so far, and how it answers.
type ProbeState = (Arc<Mutex<Vec<Recorded>>>, Arc<Respond>);

/// An HTTP server on loopback that records every request it gets (method,
/// URI, headers) and answers with `respond`, given the request and how many
/// earlier requests had the same path. Set as `HTTP_PROXY`, it sees what a
/// client would have sent to any host over plain http.
pub struct Probe {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Probe {
    pub fn start(respond: impl Fn(&Recorded, usize) -> Response + Send + Sync + 'static) -> Probe {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let state: ProbeState = (requests.clone(), Arc::new(respond));
        let app = Router::new().fallback(probe).with_state(state);
        let address = server_runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address: SocketAddr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            address
        });
        Probe {
            url: format!("http://{address}"),
            requests,
        }
    }

    /// Every request so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn probe(
    State((requests, respond)): State<ProbeState>,
    request: axum::extract::Request,
) -> Response {
    let recorded = Recorded {
        method: request.method().to_string(),
        uri: request.uri().to_string(),
        path: request.uri().path().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(key, value)| {
                (
                    key.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let earlier = {
        let mut requests = requests.lock().unwrap();
        let earlier = requests
            .iter()
            .filter(|seen| seen.path == recorded.path)
            .count();
        requests.push(recorded.clone());
        earlier
    };
    respond(&recorded, earlier)
}

/// What the fault proxy did to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 503 Slow Down for this request and the next two (a burst).
    Unavailable,
    /// Headers and half the body, then a TCP reset.
    ResetMidBody,
    /// Headers and half the body, then a clean close (body shorter than
    /// its Content-Length).
    TruncatedBody,
    /// The response held back this long before its first byte.
    SlowFirstByte,
}

/// A fault-injecting TCP proxy in front of an HTTP server: each request is
/// forwarded on a fresh upstream connection, and at `rate` (seeded, so a
/// run is repeatable) one of the `Fault`s happens instead. Counts what it
/// injected. At `rate` a request meets a fault; the kinds take turns.
pub struct FaultProxy {
    pub endpoint: String,
    pub injected: Arc<Mutex<std::collections::BTreeMap<Fault, u32>>>,
}

pub const SLOW_FIRST_BYTE: Duration = Duration::from_millis(400);

struct FaultDice {
    rng: rand_chacha::ChaCha8Rng,
    rate: f64,
    burst: u32,
    /// Faults take turns, so a few requests see every kind.
    turn: usize,
}

impl FaultDice {
    fn roll(&mut self) -> Option<Fault> {
        use rand::Rng;
        if self.burst > 0 {
            self.burst -= 1;
            return Some(Fault::Unavailable);
        }
        if !self.rng.random_bool(self.rate) {
            return None;
        }
        self.turn += 1;
        Some(match self.turn % 4 {
            1 => {
                self.burst = 2;
                Fault::Unavailable
            }
            2 => Fault::ResetMidBody,
            3 => Fault::TruncatedBody,
            _ => Fault::SlowFirstByte,
        })
    }
}

impl FaultProxy {
    pub fn start(upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        use rand::SeedableRng;
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream as http://host:port");
        let dice = Arc::new(Mutex::new(FaultDice {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            rate,
            burst: 0,
            turn: 0,
        }));
        let injected = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let listener = server_runtime()
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let counts = injected.clone();
        server_runtime().spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (dice, counts) = (dice.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = proxy_connection(client, upstream, dice, counts).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{address}"),
            injected,
        }
    }

    /// How many of each fault were injected.
    pub fn count(&self, fault: Fault) -> u32 {
        self.injected
            .lock()
            .unwrap()
            .get(&fault)
            .copied()
            .unwrap_or(0)
    }
}

/// Reads an HTTP message head (through the blank line) from `stream`, with
/// `buffered` holding bytes already read; returns the head and what follows.
async fn read_head(
    stream: &mut tokio::net::TcpStream,
    mut buffered: Vec<u8>,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffered.split_off(end + 4);
            return Ok(Some((buffered, rest)));
        }
        let mut block = [0u8; 16 * 1024];
        let n = stream.read(&mut block).await?;
        if n == 0 {
            return Ok(None);
        }
        buffered.extend_from_slice(&block[..n]);
    }
}

fn header_value(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// Reads `want` more bytes after `have`.
async fn read_exact_more(
    stream: &mut tokio::net::TcpStream,
    mut have: Vec<u8>,
    want: usize,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let start = have.len();
    have.resize(start.max(want), 0);
    if want > start {
        stream.read_exact(&mut have[start..]).await?;
    }
    have.truncate(want);
    Ok(have)
}

async fn proxy_connection(
    mut client: tokio::net::TcpStream,
    upstream: SocketAddr,
    dice: Arc<Mutex<FaultDice>>,
    counts: Arc<Mutex<std::collections::BTreeMap<Fault, u32>>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pending = Vec::new();
    loop {
        let Some((head, rest)) = read_head(&mut client, std::mem::take(&mut pending)).await? else {
            return Ok(());
        };
        let body_len: usize = header_value(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = read_exact_more(&mut client, rest, body_len).await?;
        let is_head = head.starts_with(b"HEAD ");
        let fault = dice.lock().unwrap().roll();
        let count = |fault: Fault| *counts.lock().unwrap().entry(fault).or_default() += 1;
        if fault == Some(Fault::Unavailable) {
            count(Fault::Unavailable);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>";
            let response = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(response.as_bytes()).await?;
            return client.shutdown().await;
        }
        // Forward on a fresh upstream connection that closes after its response.
        let mut request: Vec<u8> = String::from_utf8_lossy(&head[..head.len() - 2])
            .lines()
            .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
            .flat_map(|line| [line, "\r\n"])
            .collect::<String>()
            .into_bytes();
        request.extend_from_slice(b"connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        let mut server = tokio::net::TcpStream::connect(upstream).await?;
        server.write_all(&request).await?;
        let Some((response_head, rest)) = read_head(&mut server, Vec::new()).await? else {
            return Ok(());
        };
        let length = header_value(&response_head, "content-length").and_then(|v| v.parse().ok());
        let response_body = match (is_head, length) {
            (true, _) => Vec::new(),
            (false, Some(length)) => read_exact_more(&mut server, rest, length).await?,
            (false, None) => {
                let mut all = rest;
                server.read_to_end(&mut all).await?;
                all
            }
        };
        if fault == Some(Fault::SlowFirstByte) {
            count(Fault::SlowFirstByte);
            tokio::time::sleep(SLOW_FIRST_BYTE).await;
        }
        let half = response_body.len() / 2;
        let body_fault = matches!(fault, Some(Fault::ResetMidBody | Fault::TruncatedBody))
            && half > 0
            && length.is_some();
        client.write_all(&response_head).await?;
        if body_fault {
            count(fault.unwrap());
            client.write_all(&response_body[..half]).await?;
            client.flush().await?;
            if fault == Some(Fault::ResetMidBody) {
                client.set_zero_linger()?;
                drop(client);
                return Ok(());
            }
            return client.shutdown().await;
        }
        client.write_all(&response_body).await?;
        if length.is_none() {
            // Without a length the body ends where the connection does.
            return client.shutdown().await;
        }
        pending = Vec::new();
    }
}
