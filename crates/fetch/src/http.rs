//! The workspace's one HTTP client stack: reqwest 0.12 on rustls (ring), one TLS
//! configuration and one proxy configuration, made from the operator's settings
//! ([`HttpSettings`]).
//!
//! Everything that leaves a mirror over HTTP goes through here: upstream downloads
//! ([`Client`](crate::Client)), push notices to downstreams (`push::cascade`),
//! sigserver's network-view polls and object storage (`publish-target` hands
//! `object_store` a client built by [`HttpSettings::async_builder`]). So a private CA
//! or a corporate proxy configured once applies to all of them.
//!
//! - **Trust**: the system's roots (`rustls-native-certs`, which honours
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus every file of
//!   [`HttpSettings::ca_certs`] (PEM, several certificates allowed, or one DER).
//! - **Proxy**: [`HttpSettings::proxy`] (`http://[user:password@]host:port`; basic
//!   authentication from the URL) for every scheme; without it the standard variables
//!   `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` (and lower-case). Hosts in
//!   [`HttpSettings::no_proxy`] (else `NO_PROXY`) are reached directly. A proxy
//!   password is never logged nor printed: [`redact_url`].
//!
//! The builders returned here carry only TLS and proxy; each user adds its own
//! timeouts, redirects and User-Agent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::Error;

/// The largest CA certificate file read.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// Operator settings of the HTTP stack: extra trusted CAs and the proxy.
///
/// `Debug` prints the proxy without its password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// CA certificate files (PEM or DER) trusted in addition to the system's roots
    /// (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    /// Proxy for every request, `http://[user:password@]host:port` (`--proxy`);
    /// `None`: the standard environment variables.
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated as in `NO_PROXY`
    /// (`example.org,.internal,10.0.0.0/8`); `None`: the `NO_PROXY` variable.
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("ca_certs", &self.ca_certs)
            .field("proxy", &self.proxy.as_deref().map(redact_url))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// Which requests a proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyScope {
    All,
    Http,
    Https,
}

/// One proxy of the effective configuration.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyRule {
    pub(crate) scope: ProxyScope,
    /// The URL as given (may hold a password: never print it, see [`ProxyRule::name`]).
    pub(crate) url: String,
    pub(crate) no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxyRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyRule")
            .field("scope", &self.scope)
            .field("url", &redact_url(&self.url))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyRule {
    /// `host:port` of the proxy, for messages (never the credentials).
    pub(crate) fn name(&self) -> String {
        proxy_host_port(&self.url)
    }

    /// Whether the URL carries credentials (`user[:password]@`).
    pub(crate) fn has_credentials(&self) -> bool {
        authority(&self.url).contains('@')
    }

    /// Whether this proxy serves `url` (by scheme; `NO_PROXY` aside).
    pub(crate) fn serves(&self, url: &str) -> bool {
        match self.scope {
            ProxyScope::All => true,
            ProxyScope::Http => url.starts_with("http:"),
            ProxyScope::Https => url.starts_with("https:"),
        }
    }

    fn to_reqwest(&self) -> Result<reqwest::Proxy, Error> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://"))
            && self.url.contains("://")
        {
            return Err(Error::InvalidUrl {
                url: redact_url(&self.url),
                reason: "bad proxy: the scheme must be http or https".into(),
            });
        }
        let p = match self.scope {
            ProxyScope::All => reqwest::Proxy::all(self.url.as_str()),
            ProxyScope::Http => reqwest::Proxy::http(self.url.as_str()),
            ProxyScope::Https => reqwest::Proxy::https(self.url.as_str()),
        }
        .map_err(|e| Error::InvalidUrl {
            url: redact_url(&self.url),
            reason: format!("bad proxy: {}", redacted_reason(&e.to_string(), &self.url)),
        })?;
        Ok(p.no_proxy(
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string),
        ))
    }
}

/// The part of a URL between `scheme://` and the path.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// `host:port` of a proxy URL (port 80 / 443 by scheme when absent, 3128 is not
/// guessed: a URL without a port prints without one).
fn proxy_host_port(url: &str) -> String {
    let auth = authority(url);
    let host_port = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    host_port.to_string()
}

/// `url` with any `user:password@` replaced by `***@`: what may be logged or printed
/// of a proxy URL.
///
/// ```
/// assert_eq!(
///     fetch::http::redact_url("http://alice:s3cret@proxy.corp:3128/"),
///     "http://***@proxy.corp:3128/"
/// );
/// assert_eq!(fetch::http::redact_url("http://proxy.corp:3128"), "http://proxy.corp:3128");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let auth = match auth.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => auth.to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{auth}{tail}"),
        None => format!("{auth}{tail}"),
    }
}

/// A message of reqwest about `url` with its credentials taken out (reqwest may
/// quote the URL it could not parse).
fn redacted_reason(reason: &str, url: &str) -> String {
    let auth = authority(url);
    match auth.rsplit_once('@') {
        Some((cred, _)) if !cred.is_empty() => reason.replace(cred, "***"),
        _ => reason.to_string(),
    }
}

impl HttpSettings {
    /// The proxy URL for display: credentials replaced by `***`.
    pub fn proxy_redacted(&self) -> Option<String> {
        self.proxy.as_deref().map(redact_url)
    }

    /// The proxies in effect, with the environment read through `env` (the
    /// standard variables; tests pass their own).
    pub(crate) fn proxy_rules(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<ProxyRule> {
        let var = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| env(n))
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        };
        let no_proxy = self
            .no_proxy
            .clone()
            .or_else(|| var(&["NO_PROXY", "no_proxy"]))
            .filter(|v| !v.trim().is_empty());
        let rule = |scope, url: String| ProxyRule {
            scope,
            url,
            no_proxy: no_proxy.clone(),
        };
        if let Some(p) = self
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            return vec![rule(ProxyScope::All, p.to_string())];
        }
        let mut rules = Vec::new();
        if let Some(p) = var(&["HTTPS_PROXY", "https_proxy"]) {
            rules.push(rule(ProxyScope::Https, p));
        }
        if let Some(p) = var(&["HTTP_PROXY", "http_proxy"]) {
            rules.push(rule(ProxyScope::Http, p));
        }
        if let Some(p) = var(&["ALL_PROXY", "all_proxy"]) {
            rules.push(rule(ProxyScope::All, p));
        }
        rules
    }

    /// The rustls client configuration: the system's roots plus every file of
    /// [`HttpSettings::ca_certs`], ring as the provider, HTTP/1.1 by ALPN.
    ///
    /// # Errors
    /// [`Error::CaCert`] naming a CA file that cannot be read or holds no usable
    /// certificate; [`Error::TlsSetup`] when no root at all is available.
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, Error> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "reading the system's CA certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates");
        for path in &self.ca_certs {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| Error::CaCert {
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        if roots.is_empty() {
            return Err(Error::TlsSetup(
                "no trusted CA certificate: the system has none (install ca-certificates \
                 or set SSL_CERT_FILE) and no --ca-cert was given"
                    .into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsSetup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The proxies as reqwest takes them; `direct`: none at all.
    fn reqwest_proxies(&self, direct: bool) -> Result<Vec<reqwest::Proxy>, Error> {
        if direct {
            return Ok(Vec::new());
        }
        self.proxy_rules(&|v| std::env::var(v).ok())
            .iter()
            .map(ProxyRule::to_reqwest)
            .collect()
    }

    /// A blocking reqwest builder with this TLS configuration and these proxies
    /// (`direct`: no proxy whatever the settings and environment say); HTTP/1.1 only.
    ///
    /// # Errors
    /// As [`HttpSettings::tls_config`]; [`Error::InvalidUrl`] for a bad proxy URL.
    pub fn blocking_builder(
        &self,
        direct: bool,
    ) -> Result<reqwest::blocking::ClientBuilder, Error> {
        let mut b = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(self.tls_config()?)
            .http1_only()
            .no_proxy();
        for p in self.reqwest_proxies(direct)? {
            b = b.proxy(p);
        }
        Ok(b)
    }

    /// An async reqwest builder with this TLS configuration and these proxies, for
    /// async users (`object_store` in `publish-target`); HTTP/1.1 only.
    ///
    /// # Errors
    /// As [`HttpSettings::blocking_builder`].
    pub fn async_builder(&self) -> Result<reqwest::ClientBuilder, Error> {
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls_config()?)
            .http1_only()
            .no_proxy();
        for p in self.reqwest_proxies(false)? {
            b = b.proxy(p);
        }
        Ok(b)
    }

    /// A failed request to `url` by a client of [`HttpSettings::blocking_builder`] or
    /// [`HttpSettings::async_builder`] as this crate's error, for users of the stack
    /// other than [`Client`](crate::Client): [`Error::Tls`] and [`Error::ProxyAuth`]
    /// in plain words, else [`Error::Timeout`] or [`Error::Connection`].
    pub fn request_error(&self, url: &str, e: &reqwest::Error) -> Error {
        let rules = self.proxy_rules(&|v| std::env::var(v).ok());
        if let Some(plain) = classify(url, &rules, e) {
            return plain;
        }
        if e.is_timeout() {
            Error::Timeout {
                url: url.to_string(),
                stage: "request".into(),
            }
        } else {
            Error::Connection {
                url: url.to_string(),
                reason: error_chain(e),
            }
        }
    }

    /// A certificate failure, a proxy's `407` or a refused `CONNECT` tunnel found
    /// anywhere in the chain of `e`, an error of another library on this stack (e.g.
    /// `object_store`'s, which wraps reqwest's several times), as the plain error;
    /// `None` for anything else. The URL is the failed request's when the chain holds
    /// a reqwest error, else `fallback_url`.
    pub fn plain_error(
        &self,
        fallback_url: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> Option<Error> {
        let mut url: Option<String> = None;
        let mut proxy_407 = false;
        each_cause(e, &mut |c| {
            if url.is_none()
                && let Some(u) = c.downcast_ref::<reqwest::Error>().and_then(|r| r.url())
            {
                let mut u = u.clone();
                u.set_query(None);
                url = Some(redact_url(u.as_str()));
            }
            if let Some(r) = c.downcast_ref::<reqwest::Error>()
                && r.status().map(|st| st.as_u16()) == Some(407)
            {
                proxy_407 = true;
            }
            let m = c.to_string();
            if m.contains("407 Proxy Authentication Required") {
                proxy_407 = true;
            }
            if url.is_none() {
                // Libraries that keep only the text name the request's URL in it.
                url = url_in(&m);
            }
            false
        });
        let url = url.unwrap_or_else(|| fallback_url.to_string());
        let rules = self.proxy_rules(&|v| std::env::var(v).ok());
        let mut found: Option<Error> = None;
        each_cause(e, &mut |c| match c.downcast_ref::<reqwest::Error>() {
            Some(r) => {
                found = classify(&url, &rules, r);
                found.is_some()
            }
            None => false,
        });
        if found.is_none() {
            // Not a reqwest error in the chain (object_store keeps only the text):
            // look at the causes themselves.
            each_cause(e, &mut |c| {
                if let Some(r) = c.downcast_ref::<rustls::Error>() {
                    found = Some(Error::Tls {
                        url: url.clone(),
                        host: host_of(&url),
                        problem: tls_problem(r),
                    });
                }
                found.is_some()
            });
        }
        found.or_else(|| proxy_407.then(|| proxy_auth_error(&url, &rules)))
    }

    /// The error of a `407 Proxy Authentication Required` answer to a request for
    /// `url` (a forward proxy, for `http://` URLs): names the proxy, never its
    /// credentials.
    pub fn proxy_auth_error(&self, url: &str) -> Error {
        proxy_auth_error(url, &self.proxy_rules(&|v| std::env::var(v).ok()))
    }
}

/// Reads the certificates of one CA file: PEM (one or more `CERTIFICATE` blocks) or a
/// single DER certificate.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |reason: String| Error::CaCert {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_CA_FILE {
        return Err(bad(format!("larger than {MAX_CA_FILE} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE block in it".into()));
        }
        Ok(certs)
    } else if bytes.first() == Some(&0x30) {
        Ok(vec![CertificateDer::from(bytes)])
    } else {
        Err(bad("neither PEM nor a DER certificate".into()))
    }
}

/// The error chain of `e` on one line, each message once (reqwest's own `Display`
/// says only "error sending request"; the cause is further down).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cause = c.source();
    }
    s
}

/// Every error in the chain of `e`, also those an `io::Error` wraps (whose `source()`
/// skips the wrapped error itself).
fn each_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
    f: &mut dyn FnMut(&'a (dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if f(c) {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && each_cause(inner, f)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The first `http://` or `https://` URL in a message, without its query, redacted.
fn url_in(message: &str) -> Option<String> {
    let start = message
        .find("https://")
        .or_else(|| message.find("http://"))?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '?')
        .unwrap_or(rest.len());
    Some(redact_url(
        rest[..end].trim_end_matches([',', ';', ':', ')']),
    ))
}

/// The host of `url`, for messages.
fn host_of(url: &str) -> String {
    let auth = authority(url);
    let hp = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(rest) = hp.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    hp.split(':').next().unwrap_or(hp).to_string()
}

/// A TLS-certificate failure, a proxy's `407` or a refused `CONNECT` tunnel as its
/// plain error; `None` for anything else.
pub(crate) fn classify(url: &str, rules: &[ProxyRule], e: &reqwest::Error) -> Option<Error> {
    let mut tls: Option<String> = None;
    let mut proxy_auth = false;
    let mut tunnel_refused = false;
    each_cause(e, &mut |c| {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            tls = Some(tls_problem(r));
            return true;
        }
        let m = c.to_string();
        if m.contains("proxy authorization required") {
            proxy_auth = true;
            return true;
        }
        if m.contains("tunnel error: unsuccessful") {
            tunnel_refused = true;
            return true;
        }
        false
    });
    if let Some(problem) = tls {
        return Some(Error::Tls {
            url: url.to_string(),
            host: host_of(url),
            problem,
        });
    }
    if tunnel_refused {
        let rule = rules.iter().find(|r| r.serves(url));
        return Some(Error::ProxyRefused {
            url: url.to_string(),
            proxy: rule.map_or_else(|| "(unknown)".to_string(), ProxyRule::name),
            credentials_sent: rule.is_some_and(ProxyRule::has_credentials),
        });
    }
    proxy_auth.then(|| proxy_auth_error(url, rules))
}

/// The error of a `407` from the proxy serving `url`.
pub(crate) fn proxy_auth_error(url: &str, rules: &[ProxyRule]) -> Error {
    let rule = rules.iter().find(|r| r.serves(url));
    Error::ProxyAuth {
        url: url.to_string(),
        proxy: rule.map_or_else(|| "(unknown)".to_string(), ProxyRule::name),
        credentials_sent: rule.is_some_and(ProxyRule::has_credentials),
    }
}

/// What is wrong with a certificate, in words an operator can act on.
fn tls_problem(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            // No trusted CA signed it; webpki reports the last candidate it tried,
            // which may be a system root of another key type or a bad signature.
            C::UnknownIssuer
            | C::BadSignature
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "is not trusted (unknown issuer) — add its CA with --ca-cert".to_string()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "is not valid for that name (name mismatch)".to_string()
            }
            C::Expired | C::ExpiredContext { .. } => "has expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => "is not valid yet".to_string(),
            C::Revoked => "is revoked".to_string(),
            other => format!("is refused: {other:?}"),
        },
        other => format!("handshake failed: {other}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn explicit_proxy_beats_the_environment_and_takes_no_proxy() {
        let s = HttpSettings {
            proxy: Some("http://u:p@proxy.corp:3128".into()),
            no_proxy: Some("internal.example,.lan".into()),
            ..HttpSettings::default()
        };
        let rules = s.proxy_rules(&env(&[
            ("HTTPS_PROXY", "http://other:1"),
            ("NO_PROXY", "ignored"),
        ]));
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].scope, ProxyScope::All);
        assert_eq!(rules[0].no_proxy.as_deref(), Some("internal.example,.lan"));
        assert_eq!(rules[0].name(), "proxy.corp:3128");
        assert!(rules[0].has_credentials());
    }

    #[test]
    fn environment_proxies_by_scheme_with_no_proxy() {
        let s = HttpSettings::default();
        let rules = s.proxy_rules(&env(&[
            ("https_proxy", "http://tls-proxy:8080"),
            ("HTTP_PROXY", " "),
            ("http_proxy", "http://plain-proxy:3128"),
            ("no_proxy", "localhost,127.0.0.1"),
        ]));
        assert_eq!(
            rules
                .iter()
                .map(|r| (r.scope, r.url.as_str(), r.no_proxy.as_deref()))
                .collect::<Vec<_>>(),
            vec![
                (
                    ProxyScope::Https,
                    "http://tls-proxy:8080",
                    Some("localhost,127.0.0.1")
                ),
                (
                    ProxyScope::Http,
                    "http://plain-proxy:3128",
                    Some("localhost,127.0.0.1")
                ),
            ]
        );
        assert!(rules[0].serves("https://database.clamav.net/daily.cvd"));
        assert!(!rules[0].serves("http://database.clamav.net/daily.cvd"));
        assert!(!rules[0].has_credentials());
        // The setting's no_proxy beats NO_PROXY.
        let s = HttpSettings {
            no_proxy: Some("mirror.lan".into()),
            ..HttpSettings::default()
        };
        let rules = s.proxy_rules(&env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", "x")]));
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].scope, ProxyScope::All);
        assert_eq!(rules[0].no_proxy.as_deref(), Some("mirror.lan"));
        assert!(HttpSettings::default().proxy_rules(&env(&[])).is_empty());
    }

    #[test]
    fn passwords_never_show() {
        let s = HttpSettings {
            proxy: Some("http://alice:s3cret@proxy.corp:3128".into()),
            ..HttpSettings::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("s3cret") && !dbg.contains("alice"), "{dbg}");
        assert!(dbg.contains("proxy.corp:3128"), "{dbg}");
        assert_eq!(
            s.proxy_redacted().as_deref(),
            Some("http://***@proxy.corp:3128")
        );
        let rules = s.proxy_rules(&env(&[]));
        assert!(!format!("{rules:?}").contains("s3cret"));
        let e = proxy_auth_error("https://up.example/daily.cvd", &rules).to_string();
        assert!(!e.contains("s3cret") && !e.contains("alice"), "{e}");
        assert!(e.contains("proxy.corp:3128"), "{e}");
        assert!(e.contains("rejected"), "{e}");
        // A proxy URL reqwest refuses: the error does not quote the password.
        let bad = ProxyRule {
            scope: ProxyScope::All,
            url: "ftp://bob:hunter2@proxy:21".into(),
            no_proxy: None,
        };
        let e = bad.to_reqwest().unwrap_err().to_string();
        assert!(!e.contains("hunter2") && !e.contains("bob"), "{e}");
        assert_eq!(
            redact_url("proxy:3128"),
            "proxy:3128",
            "no scheme, no credentials"
        );
        assert_eq!(redact_url("u:p@proxy:3128/x"), "***@proxy:3128/x");
    }

    #[test]
    fn proxy_407_messages_say_whether_credentials_were_sent() {
        let anon = HttpSettings {
            proxy: Some("http://proxy.corp:3128".into()),
            ..HttpSettings::default()
        }
        .proxy_rules(&env(&[]));
        let e = proxy_auth_error("http://up.example/x", &anon).to_string();
        assert!(
            e.contains("proxy proxy.corp:3128 requires authentication"),
            "{e}"
        );
        assert!(e.contains("user:password@"), "{e}");
        let refused = Error::ProxyRefused {
            url: "https://up.example/x".into(),
            proxy: "proxy.corp:3128".into(),
            credentials_sent: true,
        }
        .to_string();
        assert!(
            refused.contains("proxy proxy.corp:3128 refused the CONNECT tunnel")
                && refused.contains("check the user and password"),
            "{refused}"
        );
    }

    #[test]
    fn ca_files_name_the_file_in_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, b"not a certificate").unwrap();
        let bad_pem = dir.path().join("bad.pem");
        std::fs::write(
            &bad_pem,
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let key_only = dir.path().join("key.pem");
        std::fs::write(
            &key_only,
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let bad_der = dir.path().join("bad.der");
        std::fs::write(&bad_der, [0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
        for path in [&missing, &garbage, &bad_pem, &key_only, &bad_der] {
            let s = HttpSettings {
                ca_certs: vec![path.clone()],
                ..HttpSettings::default()
            };
            let e = s.tls_config().unwrap_err();
            assert!(matches!(e, Error::CaCert { .. }), "{e}");
            assert!(
                e.to_string().contains(&path.display().to_string()),
                "{e} does not name {}",
                path.display()
            );
        }
    }

    #[test]
    fn certificate_problems_in_words_an_operator_can_act_on() {
        use rustls::CertificateError as C;
        let say = |c: C| tls_problem(&rustls::Error::InvalidCertificate(c));
        assert_eq!(
            say(C::UnknownIssuer),
            "is not trusted (unknown issuer) — add its CA with --ca-cert"
        );
        assert_eq!(say(C::BadSignature), say(C::UnknownIssuer));
        assert!(say(C::NotValidForName).contains("name mismatch"));
        assert_eq!(say(C::Expired), "has expired");
        assert_eq!(say(C::NotValidYet), "is not valid yet");
        let e = Error::Tls {
            url: "https://db.example/daily.cvd".into(),
            host: "db.example".into(),
            problem: say(C::UnknownIssuer),
        };
        assert_eq!(
            e.to_string(),
            "https://db.example/daily.cvd: certificate of db.example is not trusted \
             (unknown issuer) — add its CA with --ca-cert"
        );
    }

    #[test]
    fn urls_found_in_messages() {
        assert_eq!(
            url_in("Error performing PUT https://127.0.0.1:8333/b/k?x=1 in 1s: boom").as_deref(),
            Some("https://127.0.0.1:8333/b/k")
        );
        assert_eq!(url_in("no url here"), None);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("https://db.example:8443/x"), "db.example");
        assert_eq!(host_of("https://[::1]:8443/x"), "::1");
        assert_eq!(host_of("http://u:p@h/x"), "h");
    }
}
