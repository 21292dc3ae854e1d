//! `s3://` URLs, parsed in one place for granules, outputs and queries.

/// An `s3://bucket/key` URL split at the first `/` after the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Url<'a> {
    pub bucket: &'a str,
    /// The object key or prefix, without leading slashes; empty for the
    /// bucket's root.
    pub key: &'a str,
}

impl<'a> S3Url<'a> {
    /// `None` when `text` is not an `s3://` URL or names no bucket.
    ///
    /// ```
    /// use icesat2::dataset::location::S3Url;
    ///
    /// let url = S3Url::parse("s3://results/runs/tasmania").unwrap();
    /// assert_eq!((url.bucket, url.key), ("results", "runs/tasmania"));
    /// assert_eq!(S3Url::parse("s3://results").unwrap().key, "");
    /// assert!(S3Url::parse("https://results/runs").is_none());
    /// ```
    pub fn parse(text: &'a str) -> Option<S3Url<'a>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        (!bucket.is_empty()).then_some(S3Url {
            bucket,
            key: key.trim_start_matches('/'),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keys_and_roots() {
        assert_eq!(
            S3Url::parse("s3://b/a/k.h5"),
            Some(S3Url {
                bucket: "b",
                key: "a/k.h5"
            })
        );
        assert_eq!(
            S3Url::parse("s3://b"),
            Some(S3Url {
                bucket: "b",
                key: ""
            })
        );
        assert_eq!(
            S3Url::parse("s3://b/"),
            Some(S3Url {
                bucket: "b",
                key: ""
            })
        );
        assert_eq!(S3Url::parse("s3:///k"), None);
        assert_eq!(S3Url::parse("https://b/k"), None);
    }
}
