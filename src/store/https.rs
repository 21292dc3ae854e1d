//! HTTPS access with Earthdata Login: range requests with a bearer token, or
//! the `.netrc` redirect flow (Basic auth sent only to the EDL host, session
//! cookies kept), with retries on 5xx, 429 and broken connections.
//!
//! Written on reqwest rather than object_store's HTTP store because EDL's
//! flow needs per-hop control of redirects (credentials to one host only,
//! the token never to the storage a data URL redirects to).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::Url;

use super::StoreError;
use super::auth::EarthdataAuth;

/// Default Earthdata Login host.
pub const EDL_HOST: &str = "urs.earthdata.nasa.gov";

/// How many times a request is tried on 5xx, 429 and connection errors.
pub const MAX_ATTEMPTS: u32 = 6;
const MAX_REDIRECTS: usize = 10;

/// An HTTP client for NASA endpoints: data URLs, s3credentials, CMR.
#[derive(Debug, Clone)]
pub struct NasaClient {
    client: reqwest::Client,
    auth: Arc<EarthdataAuth>,
    /// `host[:port]` of Earthdata Login (where a netrc password may go).
    edl_authority: String,
    /// The first retry waits this long; each later one twice as long.
    pub backoff: Duration,
}

/// `host[:port]` of a URL.
pub fn authority(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

impl NasaClient {
    /// `edl_url` overrides the Earthdata Login base (tests, mirrors).
    pub fn new(auth: EarthdataAuth, edl_url: Option<&Url>) -> Result<NasaClient, StoreError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("icesat2/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| StoreError::Http {
                url: "client".into(),
                message: err.to_string(),
            })?;
        let edl_authority = edl_url
            .map(authority)
            .unwrap_or_else(|| EDL_HOST.to_string());
        Ok(NasaClient {
            client,
            auth: Arc::new(auth),
            edl_authority,
            backoff: Duration::from_millis(200),
        })
    }

    pub fn auth(&self) -> &EarthdataAuth {
        &self.auth
    }

    /// The underlying client, for requests that need no Earthdata credentials.
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// GET `url` (optionally a byte range), following redirects with EDL's
    /// rules, retrying transient failures. Returns status, headers and body.
    pub async fn get(
        &self,
        url: &Url,
        range: Option<Range<u64>>,
    ) -> Result<reqwest::Response, StoreError> {
        let origin = authority(url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.follow(url, &origin, range.clone()).await;
            let retry_after = match &result {
                Ok(response)
                    if response.status().is_server_error()
                        || response.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    Some(retry_after(response))
                }
                Ok(_) => return result,
                Err(StoreError::Transient { .. }) => Some(None),
                Err(_) => return result,
            };
            if attempt >= MAX_ATTEMPTS {
                return match result {
                    Ok(response) => Err(StoreError::Http {
                        url: redact(url),
                        message: format!("{} after {attempt} attempts", response.status()),
                    }),
                    Err(err) => Err(err),
                };
            }
            let wait = retry_after
                .flatten()
                .unwrap_or(self.backoff * 2u32.pow(attempt - 1))
                .min(Duration::from_secs(60));
            tokio::time::sleep(wait).await;
        }
    }

    async fn follow(
        &self,
        start: &Url,
        origin: &str,
        range: Option<Range<u64>>,
    ) -> Result<reqwest::Response, StoreError> {
        let mut url = start.clone();
        for _ in 0..MAX_REDIRECTS {
            let mut request = self.client.request(Method::GET, url.clone());
            if let Some(range) = &range {
                request = request.header(
                    RANGE,
                    format!("bytes={}-{}", range.start, range.end.saturating_sub(1)),
                );
            }
            let here = authority(&url);
            match &*self.auth {
                // The token goes to the data host that was asked, never to where it redirects.
                EarthdataAuth::Token(token) if here == origin => {
                    request = request.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
                }
                EarthdataAuth::Netrc { login, password } if here == self.edl_authority => {
                    request = request.basic_auth(login, Some(password.expose()));
                }
                _ => {}
            }
            let response = request.send().await.map_err(|err| StoreError::Transient {
                url: redact(&url),
                message: err.without_url().to_string(),
            })?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| StoreError::Http {
                    url: redact(&url),
                    message: "redirect without Location".into(),
                })?;
            url = url.join(location).map_err(|err| StoreError::Http {
                url: redact(&url),
                message: err.to_string(),
            })?;
        }
        Err(StoreError::Http {
            url: redact(start),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// The bytes of `range` of `url`.
    pub async fn get_range(&self, url: &Url, range: Range<u64>) -> Result<Bytes, StoreError> {
        let expected = (range.end - range.start) as usize;
        let response = self.get(url, Some(range.clone())).await?;
        let status = response.status();
        check_status(url, &response)?;
        let body = response
            .bytes()
            .await
            .map_err(|err| StoreError::Transient {
                url: redact(url),
                message: err.without_url().to_string(),
            })?;
        match status {
            StatusCode::PARTIAL_CONTENT if body.len() == expected => Ok(body),
            // A server that ignores Range sends everything.
            StatusCode::OK if body.len() as u64 >= range.end => {
                Ok(body.slice(range.start as usize..range.end as usize))
            }
            _ => Err(StoreError::Transient {
                url: redact(url),
                message: format!(
                    "expected {expected} bytes of {}..{}, got {} ({status})",
                    range.start,
                    range.end,
                    body.len()
                ),
            }),
        }
    }

    /// The size of the object at `url` (from `Content-Range` of a one-byte read).
    pub async fn len(&self, url: &Url) -> Result<u64, StoreError> {
        let response = self.get(url, Some(0..1)).await?;
        check_status(url, &response)?;
        let total = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit('/').next())
            .and_then(|total| total.parse::<u64>().ok())
            .or_else(|| {
                (response.status() == StatusCode::OK)
                    .then(|| response.content_length())
                    .flatten()
            });
        total.ok_or_else(|| StoreError::Http {
            url: redact(url),
            message: "the server gives no size (no Content-Range)".into(),
        })
    }
}

/// A 401/403 becomes an authorization error naming the token; other failures quote the body.
fn check_status(url: &Url, response: &reqwest::Response) -> Result<(), StoreError> {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(StoreError::Unauthorized {
            url: redact(url),
            status: status.as_u16(),
        });
    }
    if status == StatusCode::NOT_FOUND {
        return Err(StoreError::NotFound { url: redact(url) });
    }
    if !status.is_success() {
        return Err(StoreError::Http {
            url: redact(url),
            message: status.to_string(),
        });
    }
    Ok(())
}

/// `Retry-After` in seconds, if given.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A URL without query string or user info, safe for messages (signed URLs carry secrets).
pub fn redact(url: &Url) -> String {
    let mut clean = url.clone();
    clean.set_query(None);
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}
