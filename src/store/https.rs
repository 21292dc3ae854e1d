//! HTTPS access with Earthdata Login: range requests with a bearer token, or
//! the `.netrc` redirect flow (Basic auth sent only to the EDL host, session
//! cookies kept), with retries on 5xx, 429 and broken connections.
//!
//! Written on reqwest rather than object_store's HTTP store because EDL's
//! flow needs per-hop control of redirects (credentials to one host only,
//! the token never to the storage a data URL redirects to).
//!
//! Where credentials go: a token or password is sent only over https, or
//! over plain http to a loopback address (127.0.0.0/8, ::1, `localhost`:
//! tests and local mirrors). The bearer token goes only to the host a
//! request was made to (same scheme, host and port: never to where it
//! redirects), and only when that host is one of `TokenHosts` (NASA's
//! Earthdata and DAAC domains, the configured endpoints, the manifest's
//! `token_hosts`). The `.netrc` password goes only to the Earthdata Login
//! host. Both headers are marked sensitive.
//!
//! A body is read as a stream and never past the requested range: a 206
//! must carry the `Content-Range` asked for, and from a server that ignores
//! `Range` (a 200 with the whole object) only the bytes up to the range's
//! end are read before the connection is dropped.

use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{CONTENT_RANGE, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::{Host, Url};

use super::StoreError;
use super::auth::EarthdataAuth;
use super::retry::{Attempt, Backoff};

/// Default Earthdata Login host.
pub const EDL_HOST: &str = "urs.earthdata.nasa.gov";

/// NASA's domains that may receive the bearer token: Earthdata (CMR, EDL),
/// Earthdata Cloud (the DAACs' data and s3credentials hosts), NSIDC. Each
/// with its subdomains.
pub const EARTHDATA_DOMAINS: [&str; 3] =
    ["earthdata.nasa.gov", "earthdatacloud.nasa.gov", "nsidc.org"];

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
    /// Where the bearer token may go.
    token_hosts: Arc<TokenHosts>,
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

/// Whether `url` names a loopback address: 127.0.0.0/8, ::1 (also as
/// ::ffff:127.x.y.z) or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => loopback_v6(ip),
        Some(Host::Domain(name)) => name.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn loopback_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
}

/// Whether a credential may travel to `url` at all: over https, or over
/// plain http to a loopback address.
pub fn private_channel(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// Hosts the bearer token may be sent to: NASA's Earthdata and DAAC domains
/// (`EARTHDATA_DOMAINS`, with subdomains), the endpoints a manifest
/// configures (their host and port), and the hosts it opts in
/// (`source.cmr.token_hosts`). Whatever the list, the token still goes only
/// over https or to loopback (`private_channel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHosts {
    rules: Vec<HostRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// The domain and its subdomains, any port.
    Domain(String),
    /// This host, any port.
    Host(String),
    /// This host on this port (the scheme's default when none is written).
    Authority(String, u16),
}

impl TokenHosts {
    /// NASA's Earthdata and DAAC domains only.
    pub fn earthdata() -> TokenHosts {
        TokenHosts {
            rules: EARTHDATA_DOMAINS
                .iter()
                .map(|domain| HostRule::Domain(domain.to_string()))
                .collect(),
        }
    }

    /// Also the host and port of each of `urls`: the configured endpoints
    /// (cmr_url, edl_url, credentials_url, s3_endpoint). Text that is not a
    /// URL adds nothing (its own field's check reports it).
    pub fn with_urls<'a>(mut self, urls: impl IntoIterator<Item = &'a str>) -> TokenHosts {
        for text in urls {
            if let Ok(url) = Url::parse(text) {
                self = self.with_url(&url);
            }
        }
        self
    }

    /// Also the host and port of `url`.
    pub fn with_url(mut self, url: &Url) -> TokenHosts {
        if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
            self.rules
                .push(HostRule::Authority(host.to_ascii_lowercase(), port));
        }
        self
    }

    /// Also the manifest's opt-in entries, each `host`, `host:port` or
    /// `*.domain` (the domain and its subdomains); an entry that is not one
    /// of those is an error naming it.
    pub fn with_entries(mut self, entries: &[String]) -> Result<TokenHosts, String> {
        for entry in entries {
            self.rules.push(host_rule(entry)?);
        }
        Ok(self)
    }

    /// Whether `url`'s host is one the token may go to (the channel is
    /// `private_channel`'s business).
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.rules.iter().any(|rule| match rule {
            HostRule::Domain(domain) => {
                host == *domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            HostRule::Host(name) => host == *name,
            HostRule::Authority(name, at) => host == *name && port == Some(*at),
        })
    }
}

/// One `token_hosts` entry as a rule.
fn host_rule(entry: &str) -> Result<HostRule, String> {
    let refuse = || {
        format!(
            "'{entry}' is not a host, host:port or *.domain (no scheme, path, user or other wildcard)"
        )
    };
    let text = entry.trim();
    let (domain, rest) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if rest.is_empty() || rest.ends_with(':') || rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return Err(refuse());
    }
    // A port written out, even the scheme's default (which url drops).
    let has_port = rest.rsplit_once(':').is_some_and(|(head, port)| {
        port.bytes().all(|b| b.is_ascii_digit()) && (head.ends_with(']') || !head.contains(':'))
    });
    let url = Url::parse(&format!("https://{rest}/")).map_err(|_| refuse())?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(refuse)?
        .to_ascii_lowercase();
    match (domain, has_port, url.port_or_known_default()) {
        (true, false, _) => Ok(HostRule::Domain(host)),
        (false, false, _) => Ok(HostRule::Host(host)),
        (false, true, Some(port)) => Ok(HostRule::Authority(host, port)),
        _ => Err(refuse()),
    }
}

impl NasaClient {
    /// `edl_url` overrides the Earthdata Login base (tests, mirrors); its
    /// host joins `token_hosts`.
    pub fn new(
        auth: EarthdataAuth,
        edl_url: Option<&Url>,
        token_hosts: TokenHosts,
    ) -> Result<NasaClient, StoreError> {
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
        let token_hosts = match edl_url {
            Some(url) => token_hosts.with_url(url),
            None => token_hosts,
        };
        Ok(NasaClient {
            client,
            auth: Arc::new(auth),
            edl_authority,
            token_hosts: Arc::new(token_hosts),
            backoff: Duration::from_millis(200),
        })
    }

    pub fn auth(&self) -> &EarthdataAuth {
        &self.auth
    }

    /// The underlying client, for requests that need no Earthdata
    /// credentials (or get them from `authorize`).
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether the bearer token may go to `url`: over a private channel, to
    /// one of the token hosts.
    pub fn token_allowed(&self, url: &Url) -> bool {
        private_channel(url) && self.token_hosts.allows(url)
    }

    /// `request` (to `url`) with the bearer token, if there is one and it
    /// may go there (`token_allowed`); the header is marked sensitive.
    pub fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> reqwest::RequestBuilder {
        match &*self.auth {
            EarthdataAuth::Token(token) if self.token_allowed(url) => {
                request.bearer_auth(token.expose())
            }
            _ => request,
        }
    }

    /// GET `url` (optionally a byte range), following redirects with EDL's
    /// rules, retrying transient failures. Returns status, headers and body.
    pub async fn get(
        &self,
        url: &Url,
        range: Option<Range<u64>>,
    ) -> Result<reqwest::Response, StoreError> {
        let backoff = Backoff {
            attempts: MAX_ATTEMPTS,
            first: self.backoff,
            cap: Duration::from_secs(60),
        };
        backoff
            .run(|attempt| {
                let range = range.clone();
                async move {
                    match self.follow(url, range).await {
                        Ok(response)
                            if response.status().is_server_error()
                                || response.status() == StatusCode::TOO_MANY_REQUESTS =>
                        {
                            let wait = retry_after(&response);
                            let err = StoreError::Http {
                                url: redact(url),
                                message: format!("{} after {attempt} attempts", response.status()),
                            };
                            Attempt::Again(err, wait)
                        }
                        Err(err @ StoreError::Transient { .. }) => Attempt::Again(err, None),
                        result => Attempt::Done(result),
                    }
                }
            })
            .await
    }

    async fn follow(
        &self,
        start: &Url,
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
            match &*self.auth {
                // The token goes to the origin that was asked (scheme, host
                // and port: not after an https -> http redirect), never to
                // where it redirects.
                EarthdataAuth::Token(_) if url.origin() == start.origin() => {
                    request = self.authorize(request, &url);
                }
                EarthdataAuth::Netrc { login, password }
                    if authority(&url) == self.edl_authority && private_channel(&url) =>
                {
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

    /// The bytes of `range` of `url`. A 206 must say it holds exactly that
    /// range (`Content-Range`); a 200 (the server ignored `Range`) is read
    /// only up to the range's end, then dropped. Never more than the range
    /// is kept, and never more than its end is read.
    pub async fn get_range(&self, url: &Url, range: Range<u64>) -> Result<Bytes, StoreError> {
        let expected = range.end.saturating_sub(range.start);
        let response = self.get(url, Some(range.clone())).await?;
        check_status(url, &response)?;
        let status = response.status();
        let refuse = |message: String| StoreError::Http {
            url: redact(url),
            message,
        };
        // Bytes to pass over before the range starts.
        let skip = match status {
            StatusCode::PARTIAL_CONTENT => {
                let (header, parsed) = content_range(&response);
                match parsed {
                    Some((first, last, _)) if first == range.start && last + 1 == range.end => {}
                    _ => return Err(refuse(range_mismatch(&range, header))),
                }
                if let Some(length) = response.content_length()
                    && length != expected
                {
                    return Err(refuse(format!(
                        "a 206 of bytes {}-{} with a body of {length} bytes",
                        range.start,
                        range.end.saturating_sub(1)
                    )));
                }
                0
            }
            StatusCode::OK => {
                if let Some(length) = response.content_length()
                    && length < range.end
                {
                    return Err(refuse(format!(
                        "the server ignored the range {}..{} and sent the whole object, of {length} bytes",
                        range.start, range.end
                    )));
                }
                range.start
            }
            other => {
                return Err(refuse(format!(
                    "asked for a byte range, got {other} (neither 206 nor 200)"
                )));
            }
        };
        read_body(url, response, skip, expected).await
    }

    /// The first bytes of `url`, up to `limit`, and the object's length,
    /// in one request: the length is the total of the answer's
    /// `Content-Range` (a server clamps a range past the end), or the
    /// `Content-Length` of a 200 from a server that ignores `Range`.
    pub async fn get_head(&self, url: &Url, limit: u64) -> Result<(Bytes, u64), StoreError> {
        let response = self.get(url, Some(0..limit.max(1))).await?;
        check_status(url, &response)?;
        let refuse = |message: String| StoreError::Http {
            url: redact(url),
            message,
        };
        let total = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                let (header, parsed) = content_range(&response);
                match parsed {
                    Some((0, last, Some(total)))
                        if last < limit.max(1) && (last + 1 == limit || last + 1 == total) =>
                    {
                        total
                    }
                    _ => return Err(refuse(range_mismatch(&(0..limit), header))),
                }
            }
            StatusCode::OK => response
                .content_length()
                .ok_or_else(|| refuse("the server gives no size (no Content-Range)".into()))?,
            other => {
                return Err(refuse(format!(
                    "asked for a byte range, got {other} (neither 206 nor 200)"
                )));
            }
        };
        let body = read_body(url, response, 0, limit.min(total)).await?;
        Ok((body, total))
    }
}

/// A parsed `Content-Range`: first byte, last byte, total if known.
type ContentRange = (u64, u64, Option<u64>);

/// A 206 answer's `Content-Range` header, as text and parsed.
fn content_range(response: &reqwest::Response) -> (Option<&str>, Option<ContentRange>) {
    let header = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|value| value.to_str().ok());
    (header, header.and_then(parse_content_range))
}

/// Why an answer's `Content-Range` (`header`) is not the `range` asked.
fn range_mismatch(range: &Range<u64>, header: Option<&str>) -> String {
    format!(
        "asked for bytes {}-{}, the server answered with Content-Range {}",
        range.start,
        range.end.saturating_sub(1),
        header.map_or("(none)".to_string(), |text| {
            format!("'{}'", text.chars().take(80).collect::<String>())
        })
    )
}

/// `expected` bytes of `response`'s body after the first `skip`, read as a
/// stream and never past them.
async fn read_body(
    url: &Url,
    mut response: reqwest::Response,
    skip: u64,
    expected: u64,
) -> Result<Bytes, StoreError> {
    let mut body = BytesMut::with_capacity(expected.min(64 << 20) as usize);
    let mut passed = 0u64;
    while (body.len() as u64) < expected {
        let chunk = response
            .chunk()
            .await
            .map_err(|err| StoreError::Transient {
                url: redact(url),
                message: err.without_url().to_string(),
            })?;
        let Some(mut chunk) = chunk else { break };
        if passed < skip {
            let before = (skip - passed).min(chunk.len() as u64);
            passed += before;
            chunk = chunk.slice(before as usize..);
        }
        let room = (expected - body.len() as u64).min(chunk.len() as u64) as usize;
        body.extend_from_slice(&chunk[..room]);
    }
    // Dropping the response here closes a connection whose body goes
    // on (a 200 with the whole object): the rest is never read.
    let status = response.status();
    drop(response);
    if (body.len() as u64) < expected {
        return Err(StoreError::Transient {
            url: redact(url),
            message: format!(
                "expected {expected} bytes from byte {skip}, got {} ({status})",
                body.len()
            ),
        });
    }
    Ok(body.freeze())
}

impl NasaClient {
    /// The size of the object at `url`: the total of `Content-Range` of a
    /// one-byte read, or the `Content-Length` of a 200 from a server that
    /// ignores `Range` (whose body is then not read).
    pub async fn len(&self, url: &Url) -> Result<u64, StoreError> {
        let response = self.get(url, Some(0..1)).await?;
        check_status(url, &response)?;
        let total = match response.status() {
            StatusCode::PARTIAL_CONTENT => response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_content_range)
                .and_then(|(_, _, total)| total),
            StatusCode::OK => response.content_length(),
            _ => None,
        };
        total.ok_or_else(|| StoreError::Http {
            url: redact(url),
            message: "the server gives no size (no Content-Range)".into(),
        })
    }
}

/// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`): the first and last byte
/// and the total, if known. `None` for anything else (a malformed header, an
/// unsatisfied range `bytes */TOTAL`, a last byte before the first).
pub fn parse_content_range(text: &str) -> Option<ContentRange> {
    let rest = text.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse::<u64>().ok()?),
    };
    (first <= last && total.is_none_or(|total| last < total)).then_some((first, last, total))
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

/// `Retry-After`, if given: seconds, or an HTTP-date (a date already past
/// means now).
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, Utc::now()))
}

/// A `Retry-After` value as a wait from `now`: delay-seconds, or an
/// HTTP-date in any of its three forms (IMF-fixdate `Sun, 06 Nov 1994
/// 08:49:37 GMT`, the obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and
/// asctime `Sun Nov  6 08:49:37 1994`).
pub fn parse_retry_after(text: &str, now: DateTime<Utc>) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(text)
        .map(|date| date.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%A, %d-%b-%y %H:%M:%S GMT").map(|t| t.and_utc())
        })
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%a %b %e %H:%M:%S %Y").map(|t| t.and_utc())
        })
        .ok()?;
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// A URL without query string or user info, safe for messages (signed URLs carry secrets).
pub fn redact(url: &Url) -> String {
    let mut clean = url.clone();
    clean.set_query(None);
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn credentials_travel_only_over_https_or_to_loopback() {
        for (text, private) in [
            ("https://data.nsidc.earthdatacloud.nasa.gov/x", true),
            ("http://data.nsidc.earthdatacloud.nasa.gov/x", false),
            ("http://127.0.0.1:8080/x", true),
            ("http://127.45.0.9/x", true),
            ("http://[::1]:9000/x", true),
            ("http://[::ffff:127.0.0.1]/x", true),
            ("http://localhost:3000/x", true),
            ("http://LOCALHOST./x", true),
            ("http://128.0.0.1/x", false),
            ("http://localhost.example.org/x", false),
            ("http://10.0.0.1/x", false),
            ("ftp://127.0.0.1/x", false),
        ] {
            assert_eq!(private_channel(&url(text)), private, "{text}");
        }
    }

    #[test]
    fn the_token_goes_to_earthdata_hosts_configured_endpoints_and_opted_in_hosts() {
        let hosts = TokenHosts::earthdata()
            .with_urls([
                "http://127.0.0.1:4000",
                "not a url",
                "https://cmr.uat.example.gov",
            ])
            .with_entries(&[
                "mirror.example.org".into(),
                "*.daac.example.net".into(),
                "data.example.com:8443".into(),
                "[::1]:7000".into(),
            ])
            .unwrap();
        for (text, allowed) in [
            ("https://urs.earthdata.nasa.gov/oauth", true),
            ("https://cmr.earthdata.nasa.gov/search", true),
            ("https://data.nsidc.earthdatacloud.nasa.gov/a.h5", true),
            ("https://n5eil01u.ecs.nsidc.org/a.h5", true),
            ("https://nsidc.org/a.h5", true),
            ("https://evilnsidc.org/a.h5", false),
            ("https://nsidc.org.evil.com/a.h5", false),
            ("https://earthdata.nasa.gov.evil.com/a.h5", false),
            ("https://example.com/a.h5", false),
            ("http://127.0.0.1:4000/data/a.h5", true),
            ("http://127.0.0.1:4001/data/a.h5", false),
            ("https://cmr.uat.example.gov/search", true),
            ("https://cmr.uat.example.gov:444/search", false),
            ("https://mirror.example.org:9999/a.h5", true),
            ("https://x.mirror.example.org/a.h5", false),
            ("https://daac.example.net/a.h5", true),
            ("https://a.b.daac.example.net/a.h5", true),
            ("https://data.example.com:8443/a.h5", true),
            ("https://data.example.com/a.h5", false),
            ("http://[::1]:7000/a.h5", true),
            ("http://[::1]:7001/a.h5", false),
        ] {
            assert_eq!(hosts.allows(&url(text)), allowed, "{text}");
        }
        for entry in [
            "",
            "https://mirror.example.org",
            "mirror.example.org/path",
            "*.",
            "*.example.org:443",
            "a*.example.org",
            "user@host",
            "host:",
            "host:99999",
        ] {
            let message = TokenHosts::earthdata()
                .with_entries(&[entry.to_string()])
                .unwrap_err();
            assert!(
                message.contains(&format!("'{entry}'")),
                "{entry}: {message}"
            );
        }
        // `host:443` keeps its port (url drops https' default).
        let hosts = TokenHosts::earthdata()
            .with_entries(&["data.example.com:443".into()])
            .unwrap();
        assert!(hosts.allows(&url("https://data.example.com/a.h5")));
        assert!(!hosts.allows(&url("http://data.example.com:80/a.h5")));
    }

    #[test]
    fn the_token_is_not_sent_after_an_https_to_http_redirect_on_the_same_host() {
        // `follow` sends the token only when the hop's origin is the first
        // request's (scheme, host and port) and `token_allowed`.
        let client = NasaClient::new(
            EarthdataAuth::Token(super::super::auth::Secret::new("t")),
            None,
            TokenHosts::earthdata(),
        )
        .unwrap();
        let start = url("https://data.nsidc.earthdatacloud.nasa.gov/a.h5");
        let downgraded = url("http://data.nsidc.earthdatacloud.nasa.gov/a.h5");
        assert!(client.token_allowed(&start));
        assert_ne!(start.origin(), downgraded.origin());
        assert!(!client.token_allowed(&downgraded));
    }

    #[test]
    fn content_ranges_are_parsed_strictly() {
        assert_eq!(
            parse_content_range("bytes 0-0/1234"),
            Some((0, 0, Some(1234)))
        );
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19, None)));
        assert_eq!(
            parse_content_range(" bytes 5-9/10 "),
            Some((5, 9, Some(10)))
        );
        for bad in [
            "bytes */1234",
            "bytes 9-5/10",
            "bytes 5-10/10",
            "items 0-1/2",
            "bytes 0-1",
            "bytes a-b/c",
            "bytes -1-2/3",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let seven = Some(Duration::from_secs(7));
        assert_eq!(parse_retry_after("7", now), seven);
        assert_eq!(parse_retry_after(" 7 ", now), seven);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            seven
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            seven
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), seven);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
