//! Target URLs and settings, and building a store for one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::client::{ClientConfigKey, ClientOptions, HttpClient, HttpConnector};
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::error::PublishError;

/// One configured target: `--publish URL`, or a `[[publish]]` table with `url = "..."`
/// in the file (a plain string in a list is accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SpecRepr")]
pub struct TargetSpec {
    /// `s3://BUCKET[/PREFIX]` or `file:///PATH`.
    pub url: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SpecRepr {
    Url(String),
    Table { url: String },
}

impl From<SpecRepr> for TargetSpec {
    fn from(r: SpecRepr) -> Self {
        match r {
            SpecRepr::Url(url) | SpecRepr::Table { url } => TargetSpec { url },
        }
    }
}

impl std::str::FromStr for TargetSpec {
    type Err = PublishError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = TargetSpec {
            url: s.trim().to_owned(),
        };
        spec.parse_url()?;
        Ok(spec)
    }
}

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetUrl {
    /// An S3-compatible bucket; `prefix` has no leading or trailing `/` (empty: the
    /// bucket's root).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
    /// A local directory (absolute).
    File {
        /// The directory.
        path: PathBuf,
    },
}

impl TargetSpec {
    /// Parses the URL.
    pub fn parse_url(&self) -> Result<TargetUrl, PublishError> {
        let bad = |reason: &str| PublishError::BadUrl {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = self.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket: expected s3://BUCKET[/PREFIX]"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|s| s == "." || s == "..")
                || prefix.contains("//")
                || prefix.contains(['?', '#'])
            {
                return Err(bad("the prefix must be plain path segments"));
            }
            Ok(TargetUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            })
        } else if let Some(path) = self.url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("expected file:///ABSOLUTE/PATH"));
            }
            Ok(TargetUrl::File { path: path.into() })
        } else {
            Err(bad("expected s3://BUCKET[/PREFIX] or file:///PATH"))
        }
    }

    /// Builds the store for this target and the prefix of its objects. S3 settings
    /// come from the `AWS_*` environment (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...), then `extra` (object_store's S3
    /// configuration keys, e.g. `("aws_endpoint", "http://127.0.0.1:8333")`), which
    /// the tests use instead of the process environment. The store's own retries are
    /// off: the publisher retries whole passes with its own backoff and budget.
    pub fn open(
        &self,
        extra: &[(&str, &str)],
    ) -> Result<(Arc<dyn ObjectStore>, String, bool), PublishError> {
        self.open_with(extra, &fetch::HttpSettings::default())
    }

    /// [`TargetSpec::open`] with the operator's HTTP settings (`--ca-cert`,
    /// `--proxy`): the S3 client is the workspace's one reqwest/rustls stack
    /// ([`fetch::http`]), so a private CA or a proxy applies to object storage as to
    /// upstream downloads.
    pub fn open_with(
        &self,
        extra: &[(&str, &str)],
        http: &fetch::HttpSettings,
    ) -> Result<(Arc<dyn ObjectStore>, String, bool), PublishError> {
        let config = |source: object_store::Error| PublishError::Config {
            url: self.url.clone(),
            source: Box::new(source),
        };
        match self.parse_url()? {
            TargetUrl::S3 { bucket, prefix } => {
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                for (k, v) in extra {
                    let key = k.parse().map_err(config)?;
                    b = b.with_config(key, *v);
                }
                let retry = RetryConfig {
                    backoff: BackoffConfig::default(),
                    max_retries: 0,
                    retry_timeout: Duration::from_secs(1),
                };
                let store = b
                    .with_retry(retry)
                    .with_http_connector(SharedStack(http.clone()))
                    .build()
                    .map_err(config)?;
                Ok((Arc::new(store), prefix, true))
            }
            TargetUrl::File { path } => {
                std::fs::create_dir_all(&path).map_err(|source| PublishError::Local {
                    path: path.clone(),
                    source,
                })?;
                let store = LocalFileSystem::new_with_prefix(&path).map_err(config)?;
                Ok((Arc::new(store), String::new(), false))
            }
        }
    }
}

/// object_store's HTTP connector over the workspace's stack: the TLS configuration
/// and proxies of [`fetch::HttpSettings`], HTTP/1.1, object_store's own default time
/// limits (5 s to connect, 30 s per request), plain `http://` only when the store
/// allows it (`AWS_ALLOW_HTTP`, `allow_http`).
#[derive(Debug)]
struct SharedStack(fetch::HttpSettings);

/// object_store's default time limits (`ClientOptions`), kept with our connector.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl HttpConnector for SharedStack {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let generic =
            |source: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                store: "S3",
                source,
            };
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let client = self
            .0
            .async_builder()
            .map_err(|e| generic(Box::new(e)))?
            .user_agent(fetch::DEFAULT_USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .https_only(!allow_http)
            .build()
            .map_err(|e| generic(Box::new(e)))?;
        Ok(HttpClient::new(client))
    }
}

/// How `sigupdate` publishes to its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    /// The targets, in order.
    pub targets: Vec<TargetSpec>,
    /// Time per target and sync for retries with backoff before the target is left
    /// lagging until the next sync (default 120 s).
    pub retry_budget: Duration,
    /// How long an object no longer in the published generation stays on the target
    /// before it is deleted, so that clients mid-update never get a 404 (default 1 h).
    pub prune_grace: Duration,
    /// Trusted CAs and proxy for S3 targets (the mirror's `--ca-cert` / `--proxy`).
    pub http: fetch::HttpSettings,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            targets: Vec::new(),
            retry_budget: Duration::from_secs(120),
            prune_grace: Duration::from_secs(3600),
            http: fetch::HttpSettings::default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = |u: &str| TargetSpec { url: u.into() }.parse_url();
        assert_eq!(
            s("s3://b/a/p/").unwrap(),
            TargetUrl::S3 {
                bucket: "b".into(),
                prefix: "a/p".into()
            }
        );
        assert_eq!(
            s("s3://b").unwrap(),
            TargetUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            s("file:///srv/x").unwrap(),
            TargetUrl::File {
                path: "/srv/x".into()
            }
        );
        for bad in [
            "s3:///p",
            "s3://b/../x",
            "file://rel",
            "http://x",
            "s3://b/a//c",
        ] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_from_string_or_table() {
        #[derive(Deserialize)]
        struct F {
            publish: Vec<TargetSpec>,
        }
        let f: F = toml::from_str("publish = [\"s3://a/b\", { url = \"file:///x\" }]").unwrap();
        assert_eq!(f.publish[0].url, "s3://a/b");
        assert_eq!(f.publish[1].url, "file:///x");
        let f: F = toml::from_str("[[publish]]\nurl = \"s3://c\"\n").unwrap();
        assert_eq!(f.publish[0].url, "s3://c");
    }
}
