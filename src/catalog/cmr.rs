//! NASA CMR granule search (`granules.umm_json`): collection by concept id
//! or short name / version / provider, temporal, name patterns per ground
//! track or a spatial search, `CMR-Search-After` paging (a cursor sent twice
//! is an error, not a loop), retries on 5xx, 429 (`Retry-After`, seconds or
//! an HTTP-date) and on a page cut off or unreadable, POST for long
//! queries, errors quoting CMR. The token goes with a search only under
//! `NasaClient::authorize`'s rules.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use super::{GranuleRef, Location};
use crate::store::https::{MAX_ATTEMPTS, NasaClient, retry_after};

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

/// One search.
#[derive(Debug, Clone)]
pub struct Search {
    pub collection: Collection,
    pub temporal: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub filter: Filter,
}

/// A granule as CMR lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmrGranule {
    pub name: String,
    pub s3: Option<String>,
    pub https: Option<String>,
    pub size: Option<u64>,
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
            size: self.size,
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

    fn endpoint(&self) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/search/granules.umm_json",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url
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
        for batch in batches {
            let mut params = self.common_params(search);
            params.extend(batch);
            for granule in self.search_all(&params).await? {
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
        if let Some((start, end)) = search.temporal {
            params.push((
                "temporal".into(),
                format!(
                    "{},{}",
                    start.format("%Y-%m-%dT%H:%M:%SZ"),
                    end.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            ));
        }
        params
    }

    /// All pages of one query. Paging ends at a page without a next
    /// cursor or without items; a cursor CMR already sent is an error
    /// (paging again from it would never end).
    async fn search_all(&self, params: &[(String, String)]) -> Result<Vec<CmrGranule>, CmrError> {
        let mut out = Vec::new();
        let mut search_after: Option<String> = None;
        let mut cursors = HashSet::new();
        let mut pages = 0usize;
        loop {
            let (items, next) = self.page(params, search_after.as_deref()).await?;
            pages += 1;
            let n_items = items.len();
            out.extend(items.iter().filter_map(granule_of));
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
        params: &[(String, String)],
        search_after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), CmrError> {
        let endpoint = self.endpoint();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut attempt = 0;
        loop {
            attempt += 1;
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
                url.set_query(Some(&query));
                self.client.http().get(url)
            };
            let result = self
                .client
                .authorize(request, &endpoint)
                .headers(headers)
                .timeout(Duration::from_secs(120))
                .send()
                .await;
            let wait = match result {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let next = response
                            .headers()
                            .get("CMR-Search-After")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        match read_items(response).await {
                            Ok(items) => return Ok((items, next)),
                            Err(message) if attempt >= MAX_ATTEMPTS => {
                                return Err(CmrError::Malformed(format!(
                                    "{message} ({attempt} attempts)"
                                )));
                            }
                            // Cut off or garbled on the way: ask again.
                            Err(_) => None,
                        }
                    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after(&response);
                        if attempt >= MAX_ATTEMPTS {
                            let message = cmr_message(response).await;
                            return Err(CmrError::Unavailable {
                                url: endpoint.to_string(),
                                message: format!("{status}: {message}"),
                            });
                        }
                        wait
                    } else {
                        let message = cmr_message(response).await;
                        return Err(
                            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
                            {
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
                        );
                    }
                }
                Err(err) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(CmrError::Unavailable {
                            url: endpoint.to_string(),
                            message: err.without_url().to_string(),
                        });
                    }
                    None
                }
            };
            let backoff = Duration::from_millis(200) * 2u32.pow(attempt - 1);
            tokio::time::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(60))).await;
        }
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
    let size = umm["DataGranule"]["ArchiveAndDistributionInformation"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|info| info["Name"].as_str().is_none_or(|n| n.ends_with(".h5")))
        .and_then(|info| {
            info["SizeInBytes"].as_u64().or_else(|| {
                let size = info["Size"].as_f64()?;
                let scale = match info["SizeUnit"].as_str()? {
                    "KB" => 1e3,
                    "MB" => 1e6,
                    "GB" => 1e9,
                    _ => 1.0,
                };
                Some((size * scale) as u64)
            })
        });
    Some(CmrGranule {
        name,
        s3,
        https,
        size,
    })
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
