//! A real forward proxy for tests: Debian's squid, started on a free loopback port with
//! a configuration generated in a temporary directory, with or without basic
//! authentication, killed on drop (it runs as a [`crate::daemon::Daemon`]).
//!
//! Why squid and not tinyproxy (both are in Debian, both were tried): tinyproxy 1.11
//! answers a wrong password with `401 Unauthorized`, the origin's status, so a client
//! cannot tell a proxy refusal from the upstream's; squid answers `407 Proxy
//! Authentication Required` for a missing and for a wrong password, as RFC 9110 says,
//! which is what our error messages must name. squid starts in about 0.3 s here.
//!
//! What a test can prove with it:
//! * every request squid handled is in its access log ([`Proxy::log`]: client, user,
//!   method, URL, status), `CONNECT host:port` lines for tunnelled HTTPS;
//! * a plain-HTTP request it forwards carries `Via: 1.1 <name> (squid/…)`, where
//!   `<name>` is [`Proxy::via_name`] (unique per proxy), so the upstream's request log
//!   shows which proxy a request came through;
//! * nothing is cached (`cache deny all`): every request reaches the upstream.
//!
//! Basic authentication uses squid's `basic_ncsa_auth` with an htpasswd file holding
//! [`PROXY_USER`] / [`PROXY_PASSWORD`] (TEST ONLY).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::daemon::Daemon;

/// The user name of the proxy's basic authentication (TEST ONLY).
pub const PROXY_USER: &str = "testkit-user";
/// The password of [`PROXY_USER`] (TEST ONLY).
pub const PROXY_PASSWORD: &str = "testkit-pass";
/// [`PROXY_USER`]'s htpasswd line: `openssl passwd -apr1 -salt testkit testkit-pass`.
const HTPASSWD: &str = "testkit-user:$apr1$testkit$CekiFJ82l/fBEce6HRl9z/\n";

/// The one line squid writes per request: `time client user method URL status code`.
const LOG_FORMAT: &str = "logformat testkit %ts.%03tu %>a %un %rm %ru %>Hs %Ss";

/// How long squid may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Why the proxy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Preparing its directory or starting it failed.
    #[error("starting squid")]
    Io(#[from] std::io::Error),
    /// It did not accept connections in time, or exited (its log is quoted).
    #[error("squid did not start on {addr}; cache.log:\n{log}")]
    NotReady {
        /// The address it was given.
        addr: SocketAddr,
        /// The end of its log.
        log: String,
    },
}

/// One line of the proxy's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLogEntry {
    /// The client's address.
    pub client: String,
    /// The authenticated (or offered) user name, `None` when none was sent.
    pub user: Option<String>,
    /// `GET`, `PUT`, `CONNECT`, ...
    pub method: String,
    /// The request target: an absolute URL, or `host:port` for `CONNECT`.
    pub url: String,
    /// The status squid answered (`407` for a refused password).
    pub status: u16,
    /// squid's result code (`TCP_MISS`, `TCP_DENIED`, `TCP_TUNNEL`, ...).
    pub result: String,
}

/// A running squid on `127.0.0.1`.
#[derive(Debug)]
pub struct Proxy {
    // dropped first: squid dies before its directory is removed
    _daemon: Daemon,
    addr: SocketAddr,
    auth: bool,
    via: String,
    _shm: Shm,
    dir: Dir,
}

/// squid's shared-memory segments (`/dev/shm/<service>-*.shm`), named after its
/// service name (`-n`, unique per proxy so parallel proxies never share them), removed
/// on drop: a killed squid leaves them behind. (squid allows only letters and digits.)
#[derive(Debug)]
struct Shm(String);
impl Drop for Shm {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/dev/shm") else {
            return;
        };
        let prefix = format!("{}-", self.0);
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A directory removed on drop.
#[derive(Debug)]
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Proxy {
    /// Starts squid without authentication; `Ok(None)` when squid is missing outside CI.
    ///
    /// # Panics
    ///
    /// When squid is missing and the tests run under CI.
    pub fn start() -> Result<Option<Proxy>, ProxyError> {
        Self::start_impl(false)
    }

    /// Starts squid requiring basic authentication as [`PROXY_USER`].
    ///
    /// # Panics
    ///
    /// When squid is missing and the tests run under CI.
    pub fn start_with_auth() -> Result<Option<Proxy>, ProxyError> {
        Self::start_impl(true)
    }

    fn start_impl(auth: bool) -> Result<Option<Proxy>, ProxyError> {
        let Some((squid, helper)) = crate::tools::require_squid() else {
            return Ok(None);
        };
        // The port is chosen free, then given to squid: another process may take it in
        // between, and then squid exits, so a few attempts are made.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(&squid, &helper, auth) {
                Ok(p) => return Ok(Some(p)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ProxyError::Io(std::io::Error::other("no attempt"))))
    }

    fn try_start(squid: &Path, helper: &Path, auth: bool) -> Result<Proxy, ProxyError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir =
            Dir(std::env::temp_dir().join(format!("testkit-squid-{}-{port}", std::process::id())));
        std::fs::create_dir_all(&dir.0)?;
        // Started as root, squid drops to its own user (`proxy`), which must write its
        // logs here and read the password file.
        std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let via = format!("testkit-proxy-{port}");
        let d = dir.0.display();
        let mut conf = format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename none\n\
             cache_log {d}/cache.log\n\
             {LOG_FORMAT}\n\
             access_log stdio:{d}/access.log testkit\n\
             cache_store_log none\n\
             cache deny all\n\
             cache_mem 8 MB\n\
             coredump_dir {d}\n\
             visible_hostname {via}\n\
             shutdown_lifetime 0 seconds\n\
             pinger_enable off\n"
        );
        if auth {
            let htpasswd = dir.0.join("htpasswd");
            std::fs::write(&htpasswd, HTPASSWD)?;
            conf.push_str(&format!(
                "auth_param basic program {} {}\n\
                 auth_param basic children 2 startup=1\n\
                 auth_param basic realm testkit\n\
                 acl authed proxy_auth REQUIRED\n\
                 http_access allow authed\n",
                helper.display(),
                htpasswd.display()
            ));
        } else {
            conf.push_str("acl loopback src 127.0.0.1\nhttp_access allow loopback\n");
        }
        conf.push_str("http_access deny all\n");
        let conf_file = dir.0.join("squid.conf");
        std::fs::write(&conf_file, conf)?;
        let service = format!("testkit{}x{port}", std::process::id());
        let shm = Shm(service.clone());
        let args = vec![
            "-n".to_owned(),
            service,
            "-N".to_owned(),
            "-f".to_owned(),
            conf_file.display().to_string(),
        ];
        let mut daemon = Daemon::spawn(squid, &args, &dir.0, &dir.0.join("squid.out"))?;
        let cache_log = dir.0.join("cache.log");
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&cache_log).unwrap_or_default();
            if log.contains("Accepting HTTP Socket connections") {
                break;
            }
            if daemon.exited() || start.elapsed() > START_LIMIT {
                let out = std::fs::read_to_string(dir.0.join("squid.out")).unwrap_or_default();
                return Err(ProxyError::NotReady {
                    addr,
                    log: format!("{log}{out}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Proxy {
            _daemon: daemon,
            addr,
            auth,
            via,
            _shm: shm,
            dir,
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it requires basic authentication.
    pub fn requires_auth(&self) -> bool {
        self.auth
    }

    /// The proxy URL a client is given: `http://127.0.0.1:PORT`, with
    /// `PROXY_USER:PROXY_PASSWORD@` when it requires authentication.
    pub fn url(&self) -> String {
        if self.auth {
            self.url_with_password(PROXY_PASSWORD)
        } else {
            self.url_without_credentials()
        }
    }

    /// `http://PROXY_USER:<password>@127.0.0.1:PORT` (e.g. a wrong password).
    pub fn url_with_password(&self, password: &str) -> String {
        format!("http://{PROXY_USER}:{password}@{}", self.addr)
    }

    /// `http://127.0.0.1:PORT`, without credentials.
    pub fn url_without_credentials(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The name squid puts in the `Via` header of what it forwards (`Via: 1.1 <name>
    /// (squid/…)`), unique to this proxy.
    pub fn via_name(&self) -> &str {
        &self.via
    }

    /// The proxy's working directory (its configuration and logs).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Every request in the access log so far, in order (squid writes a line when a
    /// transaction ends).
    pub fn log(&self) -> Vec<ProxyLogEntry> {
        let text = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_log_line).collect()
    }

    /// Waits until the access log has an entry matching `pred` and returns it.
    ///
    /// # Panics
    ///
    /// When none appears within `limit` (the log is quoted).
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&ProxyLogEntry) -> bool,
    ) -> ProxyLogEntry {
        let start = Instant::now();
        loop {
            let log = self.log();
            if let Some(e) = log.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                start.elapsed() < limit,
                "the proxy's access log shows no {what} after {limit:?}: {log:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Parses one line of [`LOG_FORMAT`].
fn parse_log_line(line: &str) -> Option<ProxyLogEntry> {
    let mut f = line.split_whitespace();
    let _time = f.next()?;
    let client = f.next()?.to_owned();
    let user = f.next()?;
    let method = f.next()?.to_owned();
    let url = f.next()?.to_owned();
    let status = f.next()?.parse().ok()?;
    let result = f.next()?.to_owned();
    Some(ProxyLogEntry {
        client,
        user: (user != "-").then(|| user.to_owned()),
        method,
        url,
        status,
        result,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;
    use crate::http::TestServer;
    use std::io::{Read, Write};

    /// A request through the proxy, with `auth` as `Proxy-Authorization` when given:
    /// the status line.
    fn via_proxy(proxy: &Proxy, target: &str, auth: Option<&str>) -> String {
        let mut s = crate::net::connect(proxy.addr()).unwrap();
        let mut head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        if let Some(a) = auth {
            head.push_str(&format!("Proxy-Authorization: Basic {a}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn parses_the_log_format() {
        let e = parse_log_line(
            "1796541117.192 127.0.0.1 testkit-user GET http://127.0.0.1:18998/x 200 TCP_MISS",
        )
        .unwrap();
        assert_eq!(e.user.as_deref(), Some("testkit-user"));
        assert_eq!((e.method.as_str(), e.status), ("GET", 200));
        let e = parse_log_line("1.0 127.0.0.1 - CONNECT 127.0.0.1:9 407 TCP_DENIED").unwrap();
        assert_eq!((e.user, e.url.as_str()), (None, "127.0.0.1:9"));
        assert!(parse_log_line("garbage").is_none());
    }

    #[test]
    fn forwards_with_via_and_checks_the_password() {
        let Some(proxy) = Proxy::start_with_auth().unwrap() else {
            return;
        };
        let upstream = TestServer::start();
        upstream.put("/f", b"data".to_vec());
        let target = upstream.url("/f");
        // base64("testkit-user:testkit-pass") and a wrong password
        let good = "dGVzdGtpdC11c2VyOnRlc3RraXQtcGFzcw==";
        let bad = "dGVzdGtpdC11c2VyOndyb25n";
        assert!(via_proxy(&proxy, &target, Some(good)).contains(" 200"));
        assert!(via_proxy(&proxy, &target, Some(bad)).contains(" 407"));
        assert!(via_proxy(&proxy, &target, None).contains(" 407"));
        let seen = upstream.stats().log_for("/f").len();
        assert_eq!(
            seen, 1,
            "only the authenticated request reaches the upstream"
        );
        let via = upstream.stats().log_for("/f")[0]
            .header("via")
            .unwrap()
            .to_owned();
        assert!(via.contains(proxy.via_name()), "{via}");
        proxy.wait_for("the refused request", Duration::from_secs(10), |e| {
            e.status == 407 && e.url == target
        });
        let ok = proxy.wait_for("the request", Duration::from_secs(10), |e| e.status == 200);
        assert_eq!(ok.user.as_deref(), Some(PROXY_USER));
        assert_eq!(ok.url, target);
    }

    #[test]
    fn without_auth_forwards_everything_from_loopback() {
        let Some(proxy) = Proxy::start().unwrap() else {
            return;
        };
        assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
        let upstream = TestServer::start();
        upstream.put("/f", b"data".to_vec());
        assert!(via_proxy(&proxy, &upstream.url("/f"), None).contains(" 200"));
        proxy.wait_for("the request", Duration::from_secs(10), |e| {
            e.status == 200 && e.user.is_none()
        });
    }
}
