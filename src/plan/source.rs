//! Where a plan's granules come from, in two stages: `Source::validate`
//! checks the manifest's `source:` without touching the network (URLs
//! parsed, hosts checked, local paths looked at), and `Source::resolve`
//! lists the granules (a local folder, or a CMR search) and makes the
//! clients that will read them (credentials read here).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::cmr::{self, Cmr, Collection, Filter, Search};
use crate::catalog::{self, GranuleRef, Location};
use crate::manifest;
use crate::region::Region;
use crate::store::Access;
use crate::store::auth::EarthdataAuth;
use crate::store::https::{EDL_HOST, NasaClient, TokenHosts, authority};
use crate::store::s3::{NsidcCredentials, S3Access};

use super::tracks::TrackSelection;
use super::{CREDENTIALS_URL, PROVIDER, resolve};

/// A bad `source:` field: (field, message).
pub(super) type FieldError = (String, String);

/// A manifest's `source:`, validated; nothing fetched yet.
#[derive(Debug, Clone)]
pub enum Source {
    /// Granules in a local folder.
    Local(PathBuf),
    /// Granules listed by location (local files checked to exist).
    Urls(Vec<Location>),
    /// A CMR search.
    Cmr(Box<CmrSource>),
}

/// A validated `source.cmr`.
#[derive(Debug, Clone)]
pub struct CmrSource {
    /// Search by track names (`rgt`), else by polygon (`spatial`).
    pub by_track: bool,
    /// Read through S3 with temporary keys, else HTTPS.
    pub use_s3: bool,
    pub edl_url: Option<url::Url>,
    /// The Earthdata Login host `.netrc` is looked up for.
    pub edl_host: String,
    pub token_file: Option<PathBuf>,
    pub token_hosts: TokenHosts,
    pub cmr_url: url::Url,
    pub provider: String,
    /// The collection's concept id, when the manifest gives it.
    pub collection: Option<String>,
    /// Where temporary S3 keys come from (`access: s3`).
    pub credentials_url: Option<url::Url>,
    pub s3_endpoint: Option<String>,
}

/// What resolving a source found.
pub(super) struct Resolved {
    pub refs: Vec<GranuleRef>,
    /// How the list was made (`local`, `urls`, `cmr rgt`, `cmr spatial`).
    pub kind: String,
    /// Whether granules are skipped by the tracks in their names.
    pub prune_by_track: bool,
    pub access: Access,
    /// The CMR collection searched, and how it was chosen.
    pub collection: Option<String>,
    /// The release read: the manifest's, else the newest CMR lists.
    pub release: Option<String>,
    pub warnings: Vec<String>,
}

/// What a CMR search is for: the release asked, the region and its tracks,
/// the time window.
pub(super) struct Wanted<'a> {
    pub release: Option<&'a str>,
    pub region: &'a Region,
    pub tracks: &'a TrackSelection,
    pub temporal: cmr::Temporal,
}

impl Source {
    /// Checks `source:`; relative paths resolve against `base`.
    pub(super) fn validate(
        source: &manifest::SourceSpec,
        base: &Path,
    ) -> Result<Source, FieldError> {
        let error = |field: &str, message: String| (field.to_string(), message);
        let given = [
            source.local.is_some(),
            source.urls.is_some(),
            source.cmr.is_some(),
        ]
        .iter()
        .filter(|given| **given)
        .count();
        if given != 1 {
            return Err(error(
                "source",
                "give exactly one of `local`, `urls`, `cmr`".into(),
            ));
        }
        if let Some(local) = &source.local {
            let folder = resolve(base, &local.path);
            if !folder.is_dir() {
                return Err(error(
                    "source.local.path",
                    format!("{} is not a folder", folder.display()),
                ));
            }
            return Ok(Source::Local(folder));
        }
        if let Some(urls) = &source.urls {
            let mut locations = Vec::with_capacity(urls.len());
            for (index, url) in urls.iter().enumerate() {
                let field = format!("source.urls[{index}]");
                let location = match url.split_once("://") {
                    Some(("file", rest)) => Location::Local(PathBuf::from(rest)),
                    Some(_) => Location::parse_url(url).ok_or_else(|| {
                        error(
                            &field,
                            format!("'{url}' is not a file://, s3:// or https:// URL of a granule"),
                        )
                    })?,
                    None => Location::Local(resolve(base, url)),
                };
                if let Location::Local(path) = &location
                    && !path.is_file()
                {
                    return Err(error(&field, format!("{}: no such file", path.display())));
                }
                locations.push(location);
            }
            return Ok(Source::Urls(locations));
        }
        let Some(spec) = &source.cmr else {
            unreachable!("exactly one source is given");
        };
        let field = |name: &str| format!("source.cmr.{name}");
        let parse_url = |name: &str, text: &str| {
            url::Url::parse(text)
                .map_err(|err| error(&field(name), format!("'{text}' is not a URL: {err}")))
        };
        let by_track = match spec.tracks.as_deref().unwrap_or("rgt") {
            "rgt" => true,
            "spatial" => false,
            other => {
                return Err(error(
                    &field("tracks"),
                    format!("'{other}' is not rgt or spatial"),
                ));
            }
        };
        let use_s3 = match spec.access.as_deref().unwrap_or("https") {
            "s3" => true,
            "https" => false,
            other => {
                return Err(error(
                    &field("access"),
                    format!("'{other}' is not s3 or https"),
                ));
            }
        };
        let edl_url = spec
            .edl_url
            .as_deref()
            .map(|text| parse_url("edl_url", text))
            .transpose()?;
        let edl_host = edl_url
            .as_ref()
            .map(authority)
            .unwrap_or_else(|| EDL_HOST.to_string());
        let token_hosts = TokenHosts::earthdata()
            .with_urls(
                [&spec.cmr_url, &spec.credentials_url, &spec.s3_endpoint]
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            )
            .with_entries(spec.token_hosts.as_deref().unwrap_or_default())
            .map_err(|message| error(&field("token_hosts"), message))?;
        Ok(Source::Cmr(Box::new(CmrSource {
            by_track,
            use_s3,
            edl_url,
            edl_host,
            token_file: spec.token_file.as_deref().map(|file| resolve(base, file)),
            token_hosts,
            cmr_url: parse_url("cmr_url", spec.cmr_url.as_deref().unwrap_or(cmr::CMR_URL))?,
            provider: spec
                .provider
                .clone()
                .unwrap_or_else(|| PROVIDER.to_string()),
            collection: spec.collection.clone(),
            credentials_url: use_s3
                .then(|| {
                    parse_url(
                        "credentials_url",
                        spec.credentials_url.as_deref().unwrap_or(CREDENTIALS_URL),
                    )
                })
                .transpose()?,
            s3_endpoint: spec.s3_endpoint.clone(),
        })))
    }

    /// Lists the granules and makes the clients to read them: reads the
    /// local folder, the credentials, and searches CMR.
    pub(super) fn resolve(&self, wanted: Wanted<'_>) -> Result<Resolved, FieldError> {
        let error = |field: &str, message: String| (field.to_string(), message);
        let mut resolved = Resolved {
            refs: Vec::new(),
            kind: String::new(),
            prune_by_track: true,
            access: Access::default(),
            collection: None,
            release: wanted.release.map(str::to_string),
            warnings: Vec::new(),
        };
        match self {
            Source::Local(folder) => {
                let (refs, notes) = catalog::list_local(folder)
                    .map_err(|err| error("source.local.path", err.to_string()))?;
                resolved.refs = refs;
                resolved.warnings = notes;
                resolved.kind = "local".into();
            }
            Source::Urls(locations) => {
                resolved.refs = locations
                    .iter()
                    .map(|location| GranuleRef {
                        name: location.file_name(),
                        location: location.clone(),
                        size_hint: None,
                    })
                    .collect();
                if locations
                    .iter()
                    .any(|location| !matches!(location, Location::Local(_)))
                {
                    let auth = EarthdataAuth::resolve(None, EDL_HOST)
                        .map_err(|message| error("source.urls", message))?;
                    let client = NasaClient::new(auth, None, TokenHosts::earthdata())
                        .map_err(|err| error("source.urls", err.to_string()))?;
                    let credentials_url = url::Url::parse(CREDENTIALS_URL)
                        .map_err(|err| error("source.urls", err.to_string()))?;
                    resolved.access.s3 = Some(S3Access::new(
                        Arc::new(NsidcCredentials::new(client.clone(), credentials_url)),
                        None,
                    ));
                    resolved.access.https = Some(client);
                }
                resolved.kind = "urls".into();
            }
            Source::Cmr(spec) => spec.resolve(wanted, &mut resolved)?,
        }
        Ok(resolved)
    }
}

impl CmrSource {
    fn resolve(&self, wanted: Wanted<'_>, resolved: &mut Resolved) -> Result<(), FieldError> {
        let error = |field: &str, message: String| (field.to_string(), message);
        let auth = EarthdataAuth::resolve(self.token_file.as_deref(), &self.edl_host)
            .map_err(|message| error("source.cmr.token_file", message))?;
        if auth.is_anonymous() {
            return Err(error(
                "source.cmr",
                format!(
                    "no Earthdata Login credentials: set source.cmr.token_file or EARTHDATA_TOKEN, or add {} to ~/.netrc",
                    self.edl_host
                ),
            ));
        }
        let client = NasaClient::new(auth, self.edl_url.as_ref(), self.token_hosts.clone())
            .map_err(|err| error("source.cmr", err.to_string()))?;
        let cmr = Cmr::new(client.clone(), self.cmr_url.clone());
        let collection_id = match &self.collection {
            Some(id) => {
                resolved.collection = Some(format!("{id} (source.cmr.collection)"));
                id.clone()
            }
            None => {
                // The collection of the release asked for, else the newest
                // CMR lists; either way one CMR knows.
                let collections = crate::store::runtime()
                    .block_on(cmr.collections("ATL08", &self.provider))
                    .map_err(|err| error("source.cmr", err.to_string()))?;
                let release = wanted.release;
                let chosen = cmr::pick_collection(&collections, "ATL08", &self.provider, release)
                    .map_err(|message| {
                    let field = if release.is_some() {
                        "release"
                    } else {
                        "source.cmr"
                    };
                    error(field, message)
                })?;
                let newest = if release.is_none() {
                    ", the newest CMR lists"
                } else {
                    ""
                };
                resolved.collection = Some(format!(
                    "{} (ATL08 version {}{newest})",
                    chosen.concept_id, chosen.version
                ));
                if release.is_none() {
                    resolved.release =
                        cmr::version_number(&chosen.version).map(|number| format!("{number:03}"));
                }
                chosen.concept_id.clone()
            }
        };
        let filter = if self.by_track {
            Filter::Names(cmr::track_patterns(
                "ATL08",
                &wanted.tracks.rgts,
                &wanted.tracks.regions,
            ))
        } else {
            Filter::Polygons(wanted.region.polygons().map(super::cmr_polygon).collect())
        };
        let search = Search {
            collection: Collection::ConceptId(collection_id),
            temporal: wanted.temporal,
            filter,
        };
        let found = if matches!(&search.filter, Filter::Names(patterns) if patterns.is_empty()) {
            Vec::new()
        } else {
            crate::store::runtime()
                .block_on(cmr.granules(&search))
                .map_err(|err| error("source.cmr", err.to_string()))?
        };
        for granule in &found {
            match granule.to_ref(self.use_s3) {
                Some(granule_ref) => resolved.refs.push(granule_ref),
                None => resolved.warnings.push(format!(
                    "{}: CMR lists no {} link; left out",
                    granule.name,
                    if self.use_s3 { "s3://" } else { "https://" }
                )),
            }
        }
        if let Some(credentials_url) = &self.credentials_url {
            let credentials = NsidcCredentials::new(client.clone(), credentials_url.clone());
            resolved.access.s3 = Some(S3Access::new(
                Arc::new(credentials),
                self.s3_endpoint.clone(),
            ));
        }
        resolved.access.https = Some(client);
        resolved.kind = format!("cmr {}", if self.by_track { "rgt" } else { "spatial" });
        resolved.prune_by_track = self.by_track;
        Ok(())
    }
}
