//! S3 access to NSIDC's buckets: temporary credentials from the
//! s3credentials endpoint (refreshed before they expire; a run outlives
//! many; when a refresh fails, the keys held serve until they expire), and
//! one object_store client per bucket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::{CredentialProvider, ObjectStore};
use url::Url;

use super::StoreError;
use super::https::{NasaClient, redact};

/// NSIDC's region; its credentials work only from there.
pub const NSIDC_REGION: &str = "us-west-2";

/// Refresh when less than this much of a credential's life remains (or a
/// fifth of its life, for short-lived ones); established clients refresh
/// after 55 of 60 minutes.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// After a failed refresh, the next try waits this long (the keys held
/// serve meanwhile), so a failing endpoint is not asked at every request.
const REFRESH_RETRY: Duration = Duration::from_secs(30);

/// Keys are no longer used this close to their expiry (or a tenth of their
/// life, for short-lived ones): a request signed just before would reach
/// S3 after it.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Temporary S3 credentials from an s3credentials endpoint.
#[derive(Debug)]
pub struct NsidcCredentials {
    client: NasaClient,
    url: Url,
    cached: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
    refresh_failures: AtomicU64,
}

#[derive(Debug)]
struct Cached {
    credential: Arc<AwsCredential>,
    /// When to fetch new keys.
    refresh_at: DateTime<Utc>,
    /// Until when these keys are used if new ones cannot be had.
    usable_until: DateTime<Utc>,
    /// Their expiry as the endpoint gave it.
    expiration: DateTime<Utc>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsDocument {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: String,
}

impl NsidcCredentials {
    pub fn new(client: NasaClient, url: Url) -> NsidcCredentials {
        NsidcCredentials {
            client,
            url,
            cached: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
        }
    }

    /// How many times credentials were fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// How many refreshes failed while the keys held were still usable
    /// (and so were used on).
    pub fn refresh_failures(&self) -> u64 {
        self.refresh_failures.load(Ordering::Relaxed)
    }

    /// The keys to sign with: those held until their refresh time, then
    /// new ones. When fetching new ones fails, the keys held are used on
    /// until `usable_until` (another fetch tried every `REFRESH_RETRY`);
    /// after that, or with none held, the failure is the error, saying
    /// when the held keys expired. Nothing secret goes into a message.
    pub async fn credential(&self) -> Result<Arc<AwsCredential>, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref()
            && Utc::now() < current.refresh_at
        {
            return Ok(current.credential.clone());
        }
        match self.fetch().await {
            Ok(fresh) => {
                let credential = fresh.credential.clone();
                *cached = Some(fresh);
                Ok(credential)
            }
            Err(err) => {
                let now = Utc::now();
                match cached.as_mut() {
                    Some(held) if now < held.usable_until => {
                        self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                        held.refresh_at = (now
                            + chrono::Duration::from_std(REFRESH_RETRY).unwrap_or_default())
                        .min(held.usable_until);
                        Ok(held.credential.clone())
                    }
                    Some(held) => Err(StoreError::Http {
                        url: redact(&self.url),
                        message: format!(
                            "the S3 keys expire{} at {} and new ones could not be had: {err}",
                            if now < held.expiration { "" } else { "d" },
                            held.expiration.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    }),
                    None => Err(err),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Cached, StoreError> {
        let response = self.client.get(&self.url, None).await?;
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(StoreError::Unauthorized {
                url: redact(&self.url),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(StoreError::Http {
                url: redact(&self.url),
                message: status.to_string(),
            });
        }
        let document: CredentialsDocument =
            response.json().await.map_err(|err| StoreError::Http {
                url: redact(&self.url),
                message: format!("not a credentials document: {}", err.without_url()),
            })?;
        let expiration =
            parse_expiration(&document.expiration).ok_or_else(|| StoreError::Http {
                url: redact(&self.url),
                message: format!("unreadable expiration '{}'", document.expiration),
            })?;
        let now = Utc::now();
        let life = (expiration - now).to_std().unwrap_or_default();
        let before =
            |margin: Duration| expiration - chrono::Duration::from_std(margin).unwrap_or_default();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(Cached {
            credential: Arc::new(AwsCredential {
                key_id: document.access_key_id,
                secret_key: document.secret_access_key,
                token: document.session_token,
            }),
            refresh_at: before(REFRESH_MARGIN.min(life / 5)),
            usable_until: before(EXPIRY_MARGIN.min(life / 10)),
            expiration,
        })
    }
}

/// `2021-01-27 00:50:09+00:00` (NSIDC's form) or RFC 3339.
pub fn parse_expiration(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%:z")
        .or_else(|_| DateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f%:z"))
        .or_else(|_| DateTime::parse_from_rfc3339(text.trim()))
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

#[async_trait]
impl CredentialProvider for NsidcCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.credential()
            .await
            .map_err(|err| object_store::Error::Generic {
                store: "S3",
                source: Box::new(err),
            })
    }
}

/// object_store clients for NSIDC's buckets, one per bucket.
#[derive(Debug)]
pub struct S3Access {
    credentials: Arc<NsidcCredentials>,
    endpoint: Option<String>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl S3Access {
    pub fn new(credentials: Arc<NsidcCredentials>, endpoint: Option<String>) -> S3Access {
        S3Access {
            credentials,
            endpoint,
            stores: Mutex::new(HashMap::new()),
        }
    }

    pub fn credentials(&self) -> &NsidcCredentials {
        &self.credentials
    }

    /// The client for `bucket`.
    pub fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let mut stores = self
            .stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = stores.get(bucket) {
            return Ok(store.clone());
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(NSIDC_REGION)
            .with_credentials(self.credentials.clone());
        if let Some(endpoint) = &self.endpoint {
            // Set after any client options: they would reset allow_http.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false);
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(builder.build().map_err(|err| StoreError::Http {
                url: format!("s3://{bucket}"),
                message: err.to_string(),
            })?);
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nsidc_expiration() {
        let time = parse_expiration("2021-01-27 00:50:09+00:00").unwrap();
        assert_eq!(time.to_rfc3339(), "2021-01-27T00:50:09+00:00");
        assert!(parse_expiration("2021-01-27T00:50:09Z").is_some());
        assert!(parse_expiration("tomorrow").is_none());
    }
}
