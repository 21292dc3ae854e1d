//! Earthdata Login credentials: a bearer token (from the manifest's
//! `token_file`, else `EARTHDATA_TOKEN`) or a `~/.netrc` entry for the EDL
//! host. Secrets are wrapped so they never print.

use std::fmt;
use std::path::Path;

/// A secret string: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for an HTTP header; never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to prove who we are to NASA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarthdataAuth {
    /// `Authorization: Bearer TOKEN`.
    Token(Secret),
    /// Basic auth, sent only to the EDL host during its redirect flow.
    Netrc { login: String, password: Secret },
    /// No credentials (public catalog searches only).
    Anonymous,
}

impl EarthdataAuth {
    /// The token file if given, else `EARTHDATA_TOKEN`, else the `.netrc`
    /// entry for `edl_host` (from `$NETRC` or `~/.netrc`), else anonymous.
    pub fn resolve(token_file: Option<&Path>, edl_host: &str) -> Result<EarthdataAuth, String> {
        if let Some(path) = token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("{}: cannot read the token file: {err}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("{}: the token file is empty", path.display()));
            }
            return Ok(EarthdataAuth::Token(Secret::new(token)));
        }
        if let Ok(token) = std::env::var("EARTHDATA_TOKEN")
            && !token.trim().is_empty()
        {
            return Ok(EarthdataAuth::Token(Secret::new(token.trim())));
        }
        let netrc = std::env::var_os("NETRC")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".netrc"))
            });
        if let Some(path) = netrc
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Some((login, password)) = netrc_entry(&text, edl_host)
        {
            return Ok(EarthdataAuth::Netrc {
                login,
                password: Secret::new(password),
            });
        }
        Ok(EarthdataAuth::Anonymous)
    }

    /// Whether any credential is present.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, EarthdataAuth::Anonymous)
    }

    /// Every secret string, for tests that check nothing leaks.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            EarthdataAuth::Token(token) => vec![token.expose()],
            EarthdataAuth::Netrc { password, .. } => vec![password.expose()],
            EarthdataAuth::Anonymous => vec![],
        }
    }
}

/// The login and password of `machine` in netrc text.
pub fn netrc_entry(text: &str, machine: &str) -> Option<(String, String)> {
    let mut tokens = text.split_whitespace();
    let mut in_machine = false;
    let (mut login, mut password) = (None, None);
    while let Some(token) = tokens.next() {
        match token {
            "machine" | "default" => {
                if in_machine {
                    break;
                }
                in_machine = token == "machine" && tokens.next() == Some(machine);
            }
            "login" if in_machine => login = tokens.next(),
            "password" if in_machine => password = tokens.next(),
            "login" | "password" | "account" => {
                tokens.next();
            }
            _ => {}
        }
    }
    Some((login?.to_string(), password?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let auth = EarthdataAuth::Token(Secret::new("abc123"));
        assert!(!format!("{auth:?}").contains("abc123"));
        assert_eq!(format!("{}", Secret::new("x")), "***");
    }

    #[test]
    fn reads_netrc_entries() {
        let text = "machine other.host login a password b\nmachine urs.earthdata.nasa.gov\n  login me\n  password s3cret\n";
        assert_eq!(
            netrc_entry(text, "urs.earthdata.nasa.gov"),
            Some(("me".into(), "s3cret".into()))
        );
        assert_eq!(netrc_entry(text, "missing.host"), None);
    }
}
