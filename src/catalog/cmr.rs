//! NASA CMR search: the collections of a short name at a provider
//! (`collections.umm_json`: concept ids and versions), and granules
//! (`granules.umm_json`): collection by concept id or short name / version
//! / provider, temporal (either end may be open), name patterns per ground
//! track or a spatial search, `CMR-Search-After` paging (a cursor sent twice
//! is an error, not a loop), retries on 5xx, 429 (`Retry-After`, seconds or
//! an HTTP-date) and on a page cut off or unreadable, POST for long
//! queries, errors quoting CMR. The token goes with a search only under
//! `NasaClient::authorize`'s rules. A record's file size is read leniently
//! as a hint (`size_hint`): rounded, `NA` or missing never fails a granule.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use super::{GranuleRef, Location};
use crate::store::https::{MAX_ATTEMPTS, NasaClient, retry_after};
use crate::store::retry::{Attempt, Backoff};

/// CMR's production search endpoint.
pub const CMR_URL: &str = "https://cmr.earthdata.nasa.gov";
/// Largest page CMR serves.
const PAGE_SIZE: usize = 2000;
/// CMR limits queries with leading-wildcard patterns to five patterns.
pub const PATTERNS_PER_QUERY: usize = 5;
/// Longer query strings go as a POST form.
const MAX_GET_QUERY: usize = 1800;

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum CmrError {
    #[error(
        "CMR refused the Earthdata token ({status}): {message}; check source.cmr.token_file, EARTHDATA_TOKEN or ~/.netrc"
    )]
    Unauthorized { status: u16, message: String },
    #[error("CMR rejected the search ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("CMR at {url} is unreachable or failing: {message}")]
    Unavailable { url: String, message: String },
    #[error("CMR sent a response we cannot read: {0}")]
    Malformed(String),
}

/// Which collection to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    ConceptId(String),
    ShortName {
        short_name: String,
        version: Option<String>,
        provider: String,
    },
}

/// What to search for.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Granule name patterns (`*` and `?`), at most `PATTERNS_PER_QUERY` per request.
    Names(Vec<String>),
    /// CMR polygons (lon,lat,... counter-clockwise, closed), or'ed.
    Polygons(Vec<String>),
}

/// A time window for CMR's `temporal`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Temporal {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Temporal {
    /// The `temporal` parameter: `start,end`, `start,` or `,end` (whole
    /// seconds, UTC); none when both ends are open.
    pub fn param(&self) -> Option<String> {
        if self.start.is_none() && self.end.is_none() {
            return None;
        }
        let format = |instant: Option<DateTime<Utc>>| {
            instant
                .map(|instant| instant.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()
        };
        Some(format!("{},{}", format(self.start), format(self.end)))
    }
}

/// One search.
#[derive(Debug, Clone)]
pub struct Search {
    pub collection: Collection,
    pub temporal: Temporal,
    pub filter: Filter,
}

/// A granule as CMR lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmrGranule {
    pub name: String,
    pub s3: Option<String>,
    pub https: Option<String>,
    /// About how many bytes, when the record says (see `size_hint`).
    pub size_hint: Option<u64>,
}

/// A collection as CMR lists it (`collections.umm_json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmrCollection {
    /// `meta.concept-id`, e.g. `C3565574177-NSIDC_CPRD`.
    pub concept_id: String,
    /// `umm.ShortName`, e.g. `ATL08`.
    pub short_name: String,
    /// `umm.Version`, e.g. `007`.
    pub version: String,
}

impl CmrGranule {
    /// The reference for access `s3` (true) or `https`.
    pub fn to_ref(&self, s3: bool) -> Option<GranuleRef> {
        let link = if s3 {
            self.s3.as_ref()
        } else {
            self.https.as_ref()
        }?;
        Some(GranuleRef {
            name: self.name.clone(),
            location: Location::parse_url(link)?,
            size_hint: self.size_hint,
        })
    }
}

/// A CMR client.
#[derive(Debug, Clone)]
pub struct Cmr {
    client: NasaClient,
    base: Url,
}

impl Cmr {
    pub fn new(client: NasaClient, base: Url) -> Cmr {
        Cmr { client, base }
    }

    /// `search/{concepts}.umm_json` under the base URL.
    fn endpoint(&self, concepts: &str) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/search/{concepts}.umm_json",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url
    }

    /// The collections of `short_name` at `provider` that hold granules
    /// (`has_granules=true`), every page, in CMR's order.
    pub async fn collections(
        &self,
        short_name: &str,
        provider: &str,
    ) -> Result<Vec<CmrCollection>, CmrError> {
        let params: Vec<(String, String)> = vec![
            ("short_name".into(), short_name.into()),
            ("provider".into(), provider.into()),
            ("has_granules".into(), "true".into()),
            ("page_size".into(), PAGE_SIZE.to_string()),
        ];
        let items = self
            .search_all(&self.endpoint("collections"), &params)
            .await?;
        Ok(items.iter().filter_map(collection_of).collect())
    }

    /// Every granule matching `search`, de-duplicated by name, in name order.
    pub async fn granules(&self, search: &Search) -> Result<Vec<CmrGranule>, CmrError> {
        let batches: Vec<Vec<(String, String)>> = match &search.filter {
            Filter::Names(patterns) => patterns
                .chunks(PATTERNS_PER_QUERY)
                .map(|chunk| {
                    let mut params: Vec<(String, String)> = chunk
                        .iter()
                        .map(|pattern| ("readable_granule_name[]".to_string(), pattern.clone()))
                        .collect();
                    params.push((
                        "options[readable_granule_name][pattern]".into(),
                        "true".into(),
                    ));
                    params
                })
                .collect(),
            Filter::Polygons(polygons) => {
                let mut params: Vec<(String, String)> = polygons
                    .iter()
                    .map(|polygon| ("polygon[]".to_string(), polygon.clone()))
                    .collect();
                params.push(("options[polygon][or]".into(), "true".into()));
                vec![params]
            }
        };
        let mut seen = BTreeSet::new();
        let mut granules = Vec::new();
        let endpoint = self.endpoint("granules");
        for batch in batches {
            let mut params = self.common_params(search);
            params.extend(batch);
            let items = self.search_all(&endpoint, &params).await?;
            for granule in items.iter().filter_map(granule_of) {
                if seen.insert(granule.name.clone()) {
                    granules.push(granule);
                }
            }
        }
        granules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(granules)
    }

    fn common_params(&self, search: &Search) -> Vec<(String, String)> {
        let mut params = vec![
            ("page_size".to_string(), PAGE_SIZE.to_string()),
            ("sort_key".into(), "readable_granule_name".into()),
        ];
        match &search.collection {
            Collection::ConceptId(id) => params.push(("collection_concept_id".into(), id.clone())),
            Collection::ShortName {
                short_name,
                version,
                provider,
            } => {
                params.push(("short_name".into(), short_name.clone()));
                if let Some(version) = version {
                    params.push(("version".into(), version.clone()));
                }
                params.push(("provider".into(), provider.clone()));
            }
        }
        if let Some(temporal) = search.temporal.param() {
            params.push(("temporal".into(), temporal));
        }
        params
    }

    /// The items of all pages of one query. Paging ends at a page without
    /// a next cursor or without items; a cursor CMR already sent is an
    /// error (paging again from it would never end).
    async fn search_all(
        &self,
        endpoint: &Url,
        params: &[(String, String)],
    ) -> Result<Vec<serde_json::Value>, CmrError> {
        let mut out = Vec::new();
        let mut search_after: Option<String> = None;
        let mut cursors = HashSet::new();
        let mut pages = 0usize;
        loop {
            let (items, next) = self.page(endpoint, params, search_after.as_deref()).await?;
            pages += 1;
            let n_items = items.len();
            out.extend(items);
            match next {
                Some(next) if n_items > 0 => {
                    if !cursors.insert(next.clone()) {
                        return Err(CmrError::Malformed(format!(
                            "CMR sent a CMR-Search-After cursor it had sent before (page {pages}); stopped paging"
                        )));
                    }
                    search_after = Some(next);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// One page, with retries (also of a body cut off or not UMM JSON);
    /// returns its items and the next `CMR-Search-After`.
    async fn page(
        &self,
        endpoint: &Url,
        params: &[(String, String)],
        search_after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), CmrError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let backoff = Backoff {
            attempts: MAX_ATTEMPTS,
            first: Duration::from_millis(200),
            cap: Duration::from_secs(60),
        };
        let query = &query;
        backoff
            .run(|attempt| async move {
                let mut headers = HeaderMap::new();
                if let Some(after) = search_after.and_then(|after| after.parse().ok()) {
                    headers.insert("CMR-Search-After", after);
                }
                headers.insert("Client-Id", "icesat2".parse().expect("static header"));
                let request = if query.len() > MAX_GET_QUERY {
                    self.client
                        .http()
                        .post(endpoint.clone())
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(query.clone())
                } else {
                    let mut url = endpoint.clone();
                    url.set_query(Some(query));
                    self.client.http().get(url)
                };
                let result = self
                    .client
                    .authorize(request, endpoint)
                    .headers(headers)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await;
                let response = match result {
                    Ok(response) => response,
                    Err(err) => {
                        let err = CmrError::Unavailable {
                            url: endpoint.to_string(),
                            message: err.without_url().to_string(),
                        };
                        return Attempt::Again(err, None);
                    }
                };
                let status = response.status();
                if status.is_success() {
                    let next = response
                        .headers()
                        .get("CMR-Search-After")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match read_items(response).await {
                        Ok(items) => Attempt::Done(Ok((items, next))),
                        // Cut off or garbled on the way: ask again.
                        Err(message) => Attempt::Again(
                            CmrError::Malformed(format!("{message} ({attempt} attempts)")),
                            None,
                        ),
                    }
                } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    let wait = retry_after(&response);
                    let message = cmr_message(response).await;
                    let err = CmrError::Unavailable {
                        url: endpoint.to_string(),
                        message: format!("{status}: {message}"),
                    };
                    Attempt::Again(err, wait)
                } else {
                    let message = cmr_message(response).await;
                    Attempt::Done(Err(
                        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                            CmrError::Unauthorized {
                                status: status.as_u16(),
                                message,
                            }
                        } else {
                            CmrError::Rejected {
                                status: status.as_u16(),
                                message,
                            }
                        },
                    ))
                }
            })
            .await
    }
}

/// The `items` of a page's UMM JSON; why not, when the body is cut off,
/// not JSON or has no `items` array.
async fn read_items(response: reqwest::Response) -> Result<Vec<serde_json::Value>, String> {
    let text = response
        .bytes()
        .await
        .map_err(|err| format!("a page cut off: {}", err.without_url()))?;
    let mut body: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|err| format!("a page that is not JSON ({} bytes): {err}", text.len()))?;
    match body["items"].take() {
        serde_json::Value::Array(items) => Ok(items),
        _ => Err("a page with no `items` array".into()),
    }
}

/// CMR's `{"errors": [...]}` as one line, else the body's start.
async fn cmr_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) if value["errors"].is_array() => value["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        e.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        _ => text
            .chars()
            .take(200)
            .collect::<String>()
            .replace('\n', " "),
    }
}

/// A granule from a UMM JSON item: its .h5 links and size.
fn granule_of(item: &serde_json::Value) -> Option<CmrGranule> {
    let umm = &item["umm"];
    let mut s3 = None;
    let mut https = None;
    for link in umm["RelatedUrls"].as_array().into_iter().flatten() {
        let Some(url) = link["URL"].as_str() else {
            continue;
        };
        if !url.ends_with(".h5") {
            continue;
        }
        match link["Type"].as_str() {
            Some("GET DATA VIA DIRECT ACCESS") if url.starts_with("s3://") => {
                s3.get_or_insert_with(|| url.to_string());
            }
            Some("GET DATA") if url.starts_with("https://") || url.starts_with("http://") => {
                https.get_or_insert_with(|| url.to_string());
            }
            _ => {}
        }
    }
    let name = s3
        .as_deref()
        .or(https.as_deref())
        .and_then(|url| url.rsplit('/').next())
        .map(str::to_string)
        .or_else(|| umm["GranuleUR"].as_str().map(str::to_string))?;
    let size_hint = size_hint(&umm["DataGranule"], &name);
    Some(CmrGranule {
        name,
        s3,
        https,
        size_hint,
    })
}

/// About how many bytes a granule has, from its record's
/// `DataGranule.ArchiveAndDistributionInformation` (the entry of the
/// granule's file, else of any `.h5`, else the only one): `SizeInBytes`,
/// else `Size` in `SizeUnit` (B, KB, MB, GB, TB; decimal). Read leniently,
/// as a hint: numbers may come as text or rounded, `SizeUnit` may be `NA`;
/// anything missing, odd, zero or absurd gives `None`, never an error.
fn size_hint(data_granule: &serde_json::Value, name: &str) -> Option<u64> {
    use serde_json::Value;
    let infos: Vec<&Value> = match &data_granule["ArchiveAndDistributionInformation"] {
        Value::Array(infos) => infos.iter().collect(),
        info @ Value::Object(_) => vec![info],
        _ => return None,
    };
    let named = |test: &dyn Fn(&str) -> bool| {
        infos
            .iter()
            .find(|info| info["Name"].as_str().is_some_and(test))
            .copied()
    };
    let info = named(&|n| n == name)
        .or_else(|| named(&|n| n.ends_with(".h5")))
        .or_else(|| (infos.len() == 1).then(|| infos[0]))?;
    let number = |value: &Value| -> Option<f64> {
        let number = match value {
            Value::Number(number) => number.as_f64()?,
            Value::String(text) => text.trim().parse().ok()?,
            _ => return None,
        };
        number.is_finite().then_some(number)
    };
    let bytes = number(&info["SizeInBytes"]).or_else(|| {
        let scale = match info["SizeUnit"]
            .as_str()?
            .trim()
            .to_ascii_uppercase()
            .as_str()
        {
            "B" | "BYTES" => 1.0,
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => return None,
        };
        Some(number(&info["Size"])? * scale)
    })?;
    // Beyond a petabyte is no granule's size.
    (1.0..1e15).contains(&bytes).then(|| bytes.round() as u64)
}

/// A collection from a UMM JSON item: concept id, short name, version.
fn collection_of(item: &serde_json::Value) -> Option<CmrCollection> {
    let text = |value: &serde_json::Value| {
        value
            .as_str()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    Some(CmrCollection {
        concept_id: text(&item["meta"]["concept-id"])?,
        short_name: text(&item["umm"]["ShortName"]).unwrap_or_default(),
        version: text(&item["umm"]["Version"])?,
    })
}

/// A version as a release number: `007`, `7` and `V007` are 7.
pub fn version_number(version: &str) -> Option<u32> {
    let digits = version.strip_prefix(['V', 'v']).unwrap_or(version);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The collection to search among those CMR lists for `short_name`: the
/// one whose version is `release`, or with no release the newest
/// (versions compared as numbers). The error names the versions CMR has:
/// `CMR has no ATL08 release 009; it has 005, 006, 007`.
pub fn pick_collection<'a>(
    collections: &'a [CmrCollection],
    short_name: &str,
    provider: &str,
    release: Option<&str>,
) -> Result<&'a CmrCollection, String> {
    let mut listed: Vec<&CmrCollection> = collections
        .iter()
        .filter(|c| c.short_name.is_empty() || c.short_name.eq_ignore_ascii_case(short_name))
        .collect();
    // Numbered versions in order, then any others by text.
    listed.sort_by(|a, b| {
        let key = |c: &CmrCollection| {
            (
                version_number(&c.version).is_none(),
                version_number(&c.version),
                c.version.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let has = || {
        let mut versions: Vec<&str> = listed.iter().map(|c| c.version.as_str()).collect();
        versions.dedup();
        if versions.is_empty() {
            format!("no {short_name} collection with granules at provider {provider}")
        } else {
            versions.join(", ")
        }
    };
    match release {
        Some(release) => {
            let wanted = version_number(release);
            listed
                .iter()
                .find(|c| match (wanted, version_number(&c.version)) {
                    (Some(wanted), Some(version)) => wanted == version,
                    _ => c.version == release,
                })
                .copied()
                .ok_or_else(|| {
                    format!(
                        "CMR has no {short_name} release {release}; it has {}",
                        has()
                    )
                })
        }
        None => listed
            .iter()
            .rfind(|c| version_number(&c.version).is_some())
            .or(listed.last())
            .copied()
            .ok_or_else(|| format!("CMR has {}", has())),
    }
}

/// The name patterns of the notebook's track search: one per RGT and granule region.
pub fn track_patterns(product: &str, rgts: &BTreeSet<u16>, regions: &BTreeSet<u8>) -> Vec<String> {
    rgts.iter()
        .flat_map(|rgt| {
            regions
                .iter()
                .map(move |region| format!("{product}_*_{rgt:04}??{region:02}_*"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_umm_items() {
        let item = serde_json::json!({"umm": {
            "GranuleUR": "ATL08_20230621235543_00272011_006_01.h5",
            "RelatedUrls": [
                {"URL": "https://data.nsidc.earthdatacloud.nasa.gov/nsidc-cumulus-prod-protected/ATLAS/ATL08/006/2023/06/21/ATL08_20230621235543_00272011_006_01.h5", "Type": "GET DATA"},
                {"URL": "s3://nsidc-cumulus-prod-protected/ATLAS/ATL08/006/2023/06/21/ATL08_20230621235543_00272011_006_01.h5", "Type": "GET DATA VIA DIRECT ACCESS"},
                {"URL": "s3://nsidc-cumulus-prod-protected/ATLAS/ATL08/006/2023/06/21/ATL08_20230621235543_00272011_006_01.iso.xml", "Type": "GET DATA VIA DIRECT ACCESS"}
            ],
            "DataGranule": {"ArchiveAndDistributionInformation": [{"Name": "ATL08_20230621235543_00272011_006_01.h5", "SizeInBytes": 1234}]}
        }});
        let granule = granule_of(&item).unwrap();
        assert_eq!(granule.name, "ATL08_20230621235543_00272011_006_01.h5");
        assert!(
            granule
                .s3
                .unwrap()
                .starts_with("s3://nsidc-cumulus-prod-protected/")
        );
        assert!(granule.https.unwrap().starts_with("https://"));
    }

    #[test]
    fn sizes_are_read_leniently_as_hints() {
        let name = "ATL08_20230621235543_00272011_006_01.h5";
        let hint = |infos: serde_json::Value| {
            size_hint(
                &serde_json::json!({ "ArchiveAndDistributionInformation": infos }),
                name,
            )
        };
        use serde_json::json;
        assert_eq!(
            hint(json!([{ "Name": name, "SizeInBytes": 1234 }])),
            Some(1234)
        );
        assert_eq!(
            hint(json!([{ "Name": name, "SizeInBytes": 1234.0 }])),
            Some(1234)
        );
        assert_eq!(
            hint(json!([{ "Name": name, "SizeInBytes": " 1234 " }])),
            Some(1234)
        );
        // MB rounded, after another file's entry; the unit in any case.
        assert_eq!(
            hint(json!([
                { "Name": "ATL08_20230621235543_00272011_006_01.iso.xml", "Size": 0.01, "SizeUnit": "MB" },
                { "Name": name, "Size": 64.1, "SizeUnit": "MB" }
            ])),
            Some(64_100_000)
        );
        assert_eq!(
            hint(json!([{ "Size": "2.5", "SizeUnit": "gb" }])),
            Some(2_500_000_000)
        );
        assert_eq!(
            hint(json!({ "Name": name, "Size": 3, "SizeUnit": "KB" })),
            Some(3000)
        );
        // Not there, not a size, or absurd: no hint, and no error.
        for odd in [
            json!([{ "Name": name, "Size": 0, "SizeUnit": "NA" }]),
            json!([{ "Name": name, "Size": 12.5, "SizeUnit": "NA" }]),
            json!([{ "Name": name, "Size": 12.5 }]),
            json!([{ "Name": name, "SizeInBytes": "n/a" }]),
            json!([{ "Name": name, "SizeInBytes": -5, "Size": -3.2, "SizeUnit": "MB" }]),
            json!([{ "Name": name, "SizeInBytes": 0 }]),
            json!([{ "Name": name, "Size": 1e300, "SizeUnit": "MB" }]),
            json!([{ "Name": name, "Size": [1], "SizeUnit": "MB" }]),
            json!([{ "Name": "a.xml", "SizeInBytes": 5 }, { "Name": "b.xml", "SizeInBytes": 6 }]),
            json!([]),
            json!("64 MB"),
            serde_json::Value::Null,
        ] {
            assert_eq!(hint(odd.clone()), None, "{odd}");
        }
        // A whole item with an odd size is still a granule.
        let item = json!({"umm": {
            "RelatedUrls": [{"URL": format!("https://host/{name}"), "Type": "GET DATA"}],
            "DataGranule": {"ArchiveAndDistributionInformation": [{"Name": name, "Size": "?", "SizeUnit": "NA"}]}
        }});
        let granule = granule_of(&item).unwrap();
        assert_eq!((granule.name.as_str(), granule.size_hint), (name, None));
    }

    #[test]
    fn temporal_may_be_open_at_either_end() {
        let at = |text: &str| Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc());
        let both = Temporal {
            start: at("2019-01-01T00:00:00Z"),
            end: at("2019-12-31T23:59:59.999999Z"),
        };
        assert_eq!(
            both.param().unwrap(),
            "2019-01-01T00:00:00Z,2019-12-31T23:59:59Z"
        );
        let end_only = Temporal {
            start: None,
            ..both
        };
        assert_eq!(end_only.param().unwrap(), ",2019-12-31T23:59:59Z");
        let start_only = Temporal { end: None, ..both };
        assert_eq!(start_only.param().unwrap(), "2019-01-01T00:00:00Z,");
        assert_eq!(Temporal::default().param(), None);
    }

    #[test]
    fn the_release_asked_for_or_the_newest() {
        let collection = |id: &str, version: &str| CmrCollection {
            concept_id: id.into(),
            short_name: "ATL08".into(),
            version: version.into(),
        };
        let listed = vec![
            collection("C2613553260-NSIDC_CPRD", "006"),
            collection("C3565574177-NSIDC_CPRD", "007"),
            collection("C2153574670-NSIDC_CPRD", "005"),
        ];
        let pick = |release| pick_collection(&listed, "ATL08", "NSIDC_CPRD", release);
        assert_eq!(pick(None).unwrap().concept_id, "C3565574177-NSIDC_CPRD");
        assert_eq!(
            pick(Some("006")).unwrap().concept_id,
            "C2613553260-NSIDC_CPRD"
        );
        assert_eq!(
            pick(Some("009")).unwrap_err(),
            "CMR has no ATL08 release 009; it has 005, 006, 007"
        );
        // Versions as numbers: 10 is newer than 9; "V010" is 10.
        let more = vec![collection("C9", "009"), collection("C10", "V010")];
        assert_eq!(
            pick_collection(&more, "ATL08", "P", None)
                .unwrap()
                .concept_id,
            "C10"
        );
        assert_eq!(
            pick_collection(&more, "ATL08", "P", Some("010"))
                .unwrap()
                .concept_id,
            "C10"
        );
        assert_eq!(
            pick_collection(&[], "ATL08", "P", None).unwrap_err(),
            "CMR has no ATL08 collection with granules at provider P"
        );
        assert_eq!(
            pick_collection(&[], "ATL08", "P", Some("006")).unwrap_err(),
            "CMR has no ATL08 release 006; it has no ATL08 collection with granules at provider P"
        );
        // A UMM-C item.
        let item = serde_json::json!({
            "meta": {"concept-id": "C3565574177-NSIDC_CPRD", "provider-id": "NSIDC_CPRD"},
            "umm": {"ShortName": "ATL08", "Version": "007", "EntryTitle": "ATLAS/ICESat-2 L3A Land and Vegetation Height V007"}
        });
        assert_eq!(
            collection_of(&item).unwrap(),
            collection("C3565574177-NSIDC_CPRD", "007")
        );
        assert_eq!(
            collection_of(&serde_json::json!({"umm": {"Version": "007"}})),
            None
        );
    }

    #[test]
    fn patterns_per_track_and_region() {
        let patterns = track_patterns(
            "ATL08",
            &BTreeSet::from([27, 1300]),
            &BTreeSet::from([9, 13]),
        );
        assert_eq!(
            patterns,
            vec![
                "ATL08_*_0027??09_*",
                "ATL08_*_0027??13_*",
                "ATL08_*_1300??09_*",
                "ATL08_*_1300??13_*"
            ]
        );
    }
}
