//! Server configuration: a validated [`Config`] built with [`ConfigBuilder`].
//!
//! The binary fills it from command-line flags > `SIGSERVER_*` environment variables >
//! the TOML file given with `--config` > the defaults documented on each
//! [`ConfigBuilder`] method, through the `cli-config` crate (as `sigupdate` does).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Default most simultaneously open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default largest request head (request line + headers), bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Smallest accepted `max_header_bytes` (HTTP/1 read buffer floor).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;
/// Largest accepted `max_header_bytes`.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// Default time allowed to receive a complete request head (also the keep-alive idle
/// time between requests).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may make no progress at all (read or write) before it
/// is closed (slow or stalled clients).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default age of the last successful sync beyond which `/ready` answers 503.
pub const DEFAULT_READY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default of [`ConfigBuilder::ready_lag`]: 10 minutes.
pub const DEFAULT_READY_LAG: Duration = Duration::from_secs(600);
/// Default time in-flight requests get to finish after SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default body chunk size read from a file per write.
pub const DEFAULT_CHUNK_BYTES: usize = 64 * 1024;
/// Default total size of the small-file cache.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest file kept in the small-file cache.
pub const DEFAULT_CACHE_MAX_FILE: u64 = 1024 * 1024;
/// Most worker threads.
pub const MAX_WORKERS: usize = 256;
/// Default interval between two polls of the downstreams' `/status.json`.
pub const DEFAULT_NETWORK_POLL: Duration = Duration::from_secs(30);
/// Most listen addresses.
pub const MAX_LISTEN: usize = 64;

/// A validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) max_connections: usize,
    pub(crate) max_header_bytes: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) ready_max_age: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) rate_limit: Option<(f64, u32)>,
    pub(crate) access_log: bool,
    pub(crate) chunk_bytes: usize,
    pub(crate) http2: bool,
    pub(crate) sendfile: bool,
    pub(crate) workers: usize,
    pub(crate) cache_bytes: u64,
    pub(crate) cache_max_file: u64,
    pub(crate) dns: Option<crate::dns::DnsConfig>,
    pub(crate) push: Option<std::sync::Arc<push::PushHub>>,
    pub(crate) ready_lag: Duration,
    pub(crate) behind_redirect: Option<String>,
    pub(crate) admin_listen: Vec<SocketAddr>,
    pub(crate) status_admin_only: bool,
    pub(crate) status_name: Option<String>,
    pub(crate) status_upstreams: Vec<String>,
    pub(crate) status_version_source: Option<String>,
    pub(crate) network_downstreams: Vec<String>,
    pub(crate) network_poll: Duration,
    pub(crate) network_http: fetch::HttpSettings,
}

impl Config {
    /// Starts a configuration serving the mirror directory `dir`.
    ///
    /// ```
    /// let cfg = sigserver::Config::builder("/srv/mirror")
    ///     .listen(["127.0.0.1:0".parse().unwrap()])
    ///     .max_connections(100)
    ///     .build();
    /// # let _ = cfg;
    /// ```
    pub fn builder(dir: impl Into<PathBuf>) -> ConfigBuilder {
        ConfigBuilder {
            cfg: Config {
                dir: dir.into(),
                listen: Vec::new(),
                tls: None,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                ready_max_age: DEFAULT_READY_MAX_AGE,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                rate_limit: None,
                access_log: true,
                chunk_bytes: DEFAULT_CHUNK_BYTES,
                http2: true,
                sendfile: true,
                workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                cache_bytes: DEFAULT_CACHE_BYTES,
                cache_max_file: DEFAULT_CACHE_MAX_FILE,
                dns: None,
                push: None,
                ready_lag: DEFAULT_READY_LAG,
                behind_redirect: None,
                admin_listen: Vec::new(),
                status_admin_only: false,
                status_name: None,
                status_upstreams: Vec::new(),
                status_version_source: None,
                network_downstreams: Vec::new(),
                network_poll: DEFAULT_NETWORK_POLL,
                network_http: fetch::HttpSettings::default(),
            },
        }
    }

    /// The mirror directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configured listen addresses.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }
}

/// Builds a [`Config`]; every option has a safe default.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    cfg: Config,
}

impl ConfigBuilder {
    /// Addresses to listen on (at least one, at most [`MAX_LISTEN`]).
    pub fn listen(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.cfg.listen = addrs.into_iter().collect();
        self
    }

    /// Serve HTTPS with this PEM certificate chain and PEM private key (default: plain HTTP).
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cfg.tls = Some((cert.into(), key.into()));
        self
    }

    /// Most simultaneously open connections; more wait in the kernel's accept queue
    /// (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// Largest request head in bytes, [`MIN_HEADER_BYTES`]..=[`MAX_HEADER_BYTES`]
    /// (default [`DEFAULT_MAX_HEADER_BYTES`]); larger heads get `431`.
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.cfg.max_header_bytes = n;
        self
    }

    /// Time allowed to receive a full request head, and to wait for the next request on
    /// a kept-alive connection (default [`DEFAULT_HEADER_TIMEOUT`]).
    pub fn header_timeout(mut self, t: Duration) -> Self {
        self.cfg.header_timeout = t;
        self
    }

    /// Time a connection may make no read or write progress before it is closed
    /// (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.cfg.idle_timeout = t;
        self
    }

    /// `/ready` answers 503 when the last successful sync is older than this
    /// (default [`DEFAULT_READY_MAX_AGE`]).
    pub fn ready_max_age(mut self, t: Duration) -> Self {
        self.cfg.ready_max_age = t;
        self
    }

    /// `/ready` answers 503 when upstream (its manifest, or a push notice) announced a
    /// version that is not published here this long after (default
    /// [`DEFAULT_READY_LAG`]).
    pub fn ready_lag(mut self, t: Duration) -> Self {
        self.cfg.ready_lag = t;
        self
    }

    /// While this mirror is provably behind for a database (`/ready` says so: a newer
    /// version known for longer than [`ready_lag`](Self::ready_lag)), requests for that
    /// database's `.cvd`/`.cld`, for its cdiffs above the served version and for their
    /// `.sign` files get `302` to `url` + the same path; everything it holds it still
    /// serves, and once it has caught up it redirects nothing. With DNS on, the record
    /// then announces the newest known version. `url` is `http://` or `https://`, a
    /// trailing `/` is dropped. Default: off.
    pub fn behind_redirect(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.cfg.behind_redirect = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// Answers `POST /push` on the server's own listeners with this hub (the hub of
    /// the in-process sync loop). Without it, `/push` is 404.
    pub fn push(mut self, hub: std::sync::Arc<push::PushHub>) -> Self {
        self.cfg.push = Some(hub);
        self
    }

    /// Admin listeners (plain HTTP/1.1, no TLS): they serve only the operations
    /// endpoints (`/health`, `/ready`, `/metrics`, `/trace`, `/status`,
    /// `/status.json`), never database files. Default: none.
    pub fn admin_listen(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.cfg.admin_listen = addrs.into_iter().collect();
        self
    }

    /// Serve `/status` and `/status.json` only on the admin listeners (404 on the
    /// public ones); needs [`admin_listen`](Self::admin_listen). Default `false`.
    pub fn status_admin_only(mut self, on: bool) -> Self {
        self.cfg.status_admin_only = on;
        self
    }

    /// The name `/status` shows for this mirror (its push name). Default: the name in
    /// its trace, if any.
    pub fn status_name(mut self, name: impl Into<String>) -> Self {
        self.cfg.status_name = Some(name.into());
        self
    }

    /// The upstreams `/status` lists, in failover order (the sync settings'
    /// upstreams; shown with credentials and queries removed). Default: none.
    pub fn status_upstreams(mut self, urls: impl IntoIterator<Item = String>) -> Self {
        self.cfg.status_upstreams = urls.into_iter().collect();
        self
    }

    /// How the sync learns upstream's versions, as `/status` names the source of the
    /// newest known version (e.g. `DNS TXT`, `manifest or headers`). Default: none
    /// (shown as `upstream`).
    pub fn status_version_source(mut self, source: impl Into<String>) -> Self {
        self.cfg.status_version_source = Some(source.into());
        self
    }

    /// Downstream mirrors whose `/status.json` the network view polls: push URLs or
    /// base URLs, each becomes `<scheme>://<host:port>/status.json` (see
    /// [`crate::network_view`]). Default: none (no polling).
    pub fn network_downstreams(mut self, urls: impl IntoIterator<Item = String>) -> Self {
        self.cfg.network_downstreams = urls.into_iter().collect();
        self
    }

    /// The HTTP settings (trusted CAs, proxy) of the network view's polls: the
    /// operator's, as for upstream downloads (default: system roots, proxy from the
    /// environment).
    pub fn network_http(mut self, settings: fetch::HttpSettings) -> Self {
        self.cfg.network_http = settings;
        self
    }

    /// Interval between two polls of the downstreams (default
    /// [`DEFAULT_NETWORK_POLL`]).
    pub fn network_poll(mut self, every: Duration) -> Self {
        self.cfg.network_poll = every;
        self
    }

    /// Time in-flight requests get to finish on shutdown (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, t: Duration) -> Self {
        self.cfg.shutdown_timeout = t;
        self
    }

    /// Per-client-IP limit: `per_second` requests per second with bursts of `burst`;
    /// excess requests get `429` with `Retry-After`. Default: no limit.
    /// `/health`, `/ready` and `/metrics` are never limited.
    pub fn rate_limit(mut self, per_second: f64, burst: u32) -> Self {
        self.cfg.rate_limit = Some((per_second, burst));
        self
    }

    /// Whether to log one access line per request (default `true`).
    pub fn access_log(mut self, on: bool) -> Self {
        self.cfg.access_log = on;
        self
    }

    /// Bytes read from a file per body chunk, 4 KiB..=4 MiB (default [`DEFAULT_CHUNK_BYTES`]).
    pub fn chunk_bytes(mut self, n: usize) -> Self {
        self.cfg.chunk_bytes = n;
        self
    }

    /// Whether to speak HTTP/2 too (prior knowledge on cleartext, ALPN `h2` on TLS);
    /// default `true`.
    pub fn http2(mut self, on: bool) -> Self {
        self.cfg.http2 = on;
        self
    }

    /// Whether file bodies of 16 KiB and more are sent with `sendfile(2)` on plain-TCP
    /// HTTP/1 connections (Linux), from the descriptor the request opened, instead of
    /// being copied through user space; default `true`. TLS and HTTP/2 always copy.
    pub fn sendfile(mut self, on: bool) -> Self {
        self.cfg.sendfile = on;
        self
    }

    /// Worker threads, 1..=[`MAX_WORKERS`] (default: one per CPU). Each worker runs its
    /// own single-threaded event loop polling the listening sockets and serving the
    /// connections it accepted, like nginx's worker processes: no work stealing, no
    /// cross-thread wake-ups on the request path.
    pub fn workers(mut self, n: usize) -> Self {
        self.cfg.workers = n;
        self
    }

    /// Small-file cache: at most `total` bytes in memory, files up to `max_file` bytes
    /// (defaults [`DEFAULT_CACHE_BYTES`], [`DEFAULT_CACHE_MAX_FILE`]); `total` 0 turns
    /// it off. Larger files are always streamed. `total` is split evenly between the
    /// workers (each has its own part, so workers share no lock), and a file larger
    /// than one part is not cached.
    pub fn cache(mut self, total: u64, max_file: u64) -> Self {
        self.cfg.cache_bytes = total;
        self.cfg.cache_max_file = max_file;
        self
    }

    /// Also answer the version record over DNS (default: no DNS server); see
    /// [`crate::dns`].
    pub fn dns(mut self, dns: crate::dns::DnsConfig) -> Self {
        self.cfg.dns = Some(dns);
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<Config, Error> {
        let c = self.cfg;
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if c.listen.is_empty() {
            return bad("listen", "at least one address is required");
        }
        if c.listen.len() > MAX_LISTEN {
            return bad("listen", "too many addresses");
        }
        if c.max_connections == 0 || c.max_connections > 1_000_000 {
            return bad("max_connections", "must be 1..=1000000");
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&c.max_header_bytes) {
            return bad("max_header_bytes", "must be 8192..=1048576");
        }
        for (f, t) in [
            ("header_timeout", c.header_timeout),
            ("idle_timeout", c.idle_timeout),
            ("ready_max_age", c.ready_max_age),
            ("ready_lag", c.ready_lag),
            ("network_poll", c.network_poll),
        ] {
            if t.is_zero() {
                return bad(f, "must be greater than zero");
            }
        }
        if let Some((rate, burst)) = c.rate_limit
            && (!(rate.is_finite() && rate > 0.0) || burst == 0)
        {
            return bad("rate_limit", "rate must be > 0 and burst >= 1");
        }
        if let Some(u) = &c.behind_redirect {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"));
            let host_ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && !r.starts_with('/')
                    && !r.contains(['?', '#'])
                    && r.bytes().all(|b| b.is_ascii_graphic())
            });
            if !host_ok || u.len() > 1024 {
                return bad(
                    "behind_redirect",
                    "must be an http:// or https:// URL with a host (no query, no fragment, no spaces)",
                );
            }
        }
        if c.admin_listen.len() > MAX_LISTEN {
            return bad("admin_listen", "too many addresses");
        }
        if c.status_admin_only && c.admin_listen.is_empty() {
            return bad(
                "status_admin_only",
                "needs an admin listener (admin_listen)",
            );
        }
        if !(1..=MAX_WORKERS).contains(&c.workers) {
            return bad("workers", "must be 1..=256");
        }
        if !(4096..=4 * 1024 * 1024).contains(&c.chunk_bytes) {
            return bad("chunk_bytes", "must be 4096..=4194304");
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigBuilder {
        Config::builder("/tmp").listen(["127.0.0.1:0".parse().unwrap()])
    }

    #[test]
    fn validates() {
        assert!(base().build().is_ok());
        assert!(Config::builder("/tmp").build().is_err());
        assert!(base().max_connections(0).build().is_err());
        assert!(base().max_header_bytes(100).build().is_err());
        assert!(base().header_timeout(Duration::ZERO).build().is_err());
        assert!(base().rate_limit(f64::NAN, 1).build().is_err());
        assert!(base().rate_limit(1.0, 0).build().is_err());
        assert!(base().chunk_bytes(1).build().is_err());
        assert!(base().workers(0).build().is_err());
        for bad in [
            "ftp://x",
            "http://",
            "http:///x",
            "x",
            "http://a b",
            "http://a/?q",
        ] {
            assert!(base().behind_redirect(bad).build().is_err(), "{bad}");
        }
        let c = base()
            .behind_redirect("http://up.example:8080/m/")
            .build()
            .unwrap();
        assert_eq!(
            c.behind_redirect.as_deref(),
            Some("http://up.example:8080/m")
        );
        assert!(base().status_admin_only(true).build().is_err());
        assert!(
            base()
                .status_admin_only(true)
                .admin_listen(["127.0.0.1:0".parse().unwrap()])
                .build()
                .is_ok()
        );
        assert!(base().network_poll(Duration::ZERO).build().is_err());
    }
}
