//! A real S3-compatible store for tests, benches and xtask: SeaweedFS (`weed server
//! -s3`, found by [`crate::tools::require_weed`]) on loopback ports of its own, in a
//! temporary directory, killed on drop.
//!
//! Every port `weed server` opens is given explicitly (master, volume, filer, S3, their
//! gRPC ports, the Iceberg and Lance ports), each a free port the system chose, so that
//! parallel tests and other services never collide. The server runs as a
//! [`crate::daemon::Daemon`]: killed with its process group on drop, or by its watchdog
//! when the test process dies without dropping it.
//!
//! [`SeaweedFs::start_tls`] serves S3 over HTTPS instead (`-s3.cert.file`,
//! `-s3.key.file`: SeaweedFS 4.48 then speaks TLS on the S3 port), with a certificate
//! from [`crate::tls`]; [`SeaweedFs::endpoint`] becomes `https://127.0.0.1:PORT`, and
//! this module's own requests ([`SeaweedFs::request`]) trust the certificate's CA.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;

/// A running SeaweedFS with its S3 gateway.
#[derive(Debug)]
pub struct SeaweedFs {
    // dropped first: the server dies before its directory is removed
    _daemon: Daemon,
    s3: SocketAddr,
    /// In HTTPS mode: a client configuration trusting the certificate's CA.
    tls: Option<Arc<rustls::ClientConfig>>,
    dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A directory removed on drop (testkit does not depend on `tempfile`).
    #[derive(Debug)]
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Why the store could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SeaweedError {
    /// Starting the process or preparing its directory failed.
    #[error("starting weed")]
    Io(#[from] std::io::Error),
    /// The TLS certificate could not be written or used.
    #[error("TLS set-up")]
    Tls(#[from] crate::tls::TlsError),
    /// It did not answer on its S3 port in time (its log is quoted).
    #[error("weed did not serve S3 on {addr} within {secs} s; log:\n{log}")]
    NotReady {
        /// The S3 address.
        addr: SocketAddr,
        /// How long we waited.
        secs: u64,
        /// The end of its log.
        log: String,
    },
    /// Creating a bucket failed.
    #[error("creating bucket {bucket}: HTTP {status}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// The status line.
        status: String,
    },
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl SeaweedFs {
    /// Starts `weed` (from [`crate::tools::require_weed`]; `Ok(None)` when it is missing
    /// outside CI) and waits until its S3 gateway answers.
    ///
    /// # Panics
    ///
    /// When `weed` is missing and the tests run under CI.
    pub fn start() -> Result<Option<SeaweedFs>, SeaweedError> {
        let Some(weed) = crate::tools::require_weed() else {
            return Ok(None);
        };
        Self::start_with(&weed, None).map(Some)
    }

    /// [`start`](Self::start) serving S3 over HTTPS with `cert` (e.g.
    /// [`crate::tls::TestPki::server`], valid for `127.0.0.1`).
    ///
    /// # Panics
    ///
    /// When `weed` is missing and the tests run under CI.
    pub fn start_tls(cert: &crate::tls::ServerCert) -> Result<Option<SeaweedFs>, SeaweedError> {
        let Some(weed) = crate::tools::require_weed() else {
            return Ok(None);
        };
        Self::start_with(&weed, Some(cert)).map(Some)
    }

    /// Starts the given `weed` executable, over HTTPS with `tls` when given.
    pub fn start_with(
        weed: &Path,
        tls: Option<&crate::tls::ServerCert>,
    ) -> Result<SeaweedFs, SeaweedError> {
        let dir = std::env::temp_dir().join(format!(
            "testkit-weed-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let dir = tempfile_dir::Dir(dir);
        let names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
        ];
        let mut ports = Vec::new();
        // hold every listener until all are chosen, so no two are the same
        let mut held = Vec::new();
        for _ in names {
            let l = TcpListener::bind("127.0.0.1:0")?;
            ports.push(l.local_addr()?.port());
            held.push(l);
        }
        drop(held);
        let mut args = vec![
            "server".to_owned(),
            format!("-dir={}", dir.0.display()),
            "-ip=127.0.0.1".to_owned(),
            "-ip.bind=127.0.0.1".to_owned(),
            "-s3".to_owned(),
            "-master.volumeSizeLimitMB=1024".to_owned(),
            "-volume.max=0".to_owned(),
        ];
        for (n, p) in names.iter().zip(&ports) {
            args.push(format!("-{n}={p}"));
        }
        let client_tls = match tls {
            Some(cert) => {
                let (cert_file, key_file) = cert.write(&dir.0, "s3-tls")?;
                args.push(format!("-s3.cert.file={}", cert_file.display()));
                args.push(format!("-s3.key.file={}", key_file.display()));
                Some(cert.client_config()?)
            }
            None => None,
        };
        let s3 = SocketAddr::from(([127, 0, 0, 1], ports[6]));
        let log = dir.0.join("weed.log");
        let daemon = Daemon::spawn(weed, &args, &dir.0, &log)?;
        let server = SeaweedFs {
            _daemon: daemon,
            s3,
            tls: client_tls,
            dir,
        };
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            // ready when the gateway answers a bucket listing with any HTTP status
            if let Ok((status, _)) = server.request("GET", "/", &[], b"")
                && !status.is_empty()
            {
                break;
            }
            if start.elapsed() > limit {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = text
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(SeaweedError::NotReady {
                    addr: s3,
                    secs: limit.as_secs(),
                    log: tail,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT` (`https://` over TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.s3)
    }

    /// Whether S3 is served over HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// One request to the S3 gateway ([`request`], over TLS in HTTPS mode, trusting the
    /// certificate's CA).
    ///
    /// # Errors
    ///
    /// When the connection or the exchange fails.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(String, Vec<u8>)> {
        match &self.tls {
            None => request(self.s3, method, path, headers, body),
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(self.s3.ip().into());
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(std::io::Error::other)?;
                let tcp = crate::net::connect(self.s3)?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                exchange(&mut s, self.s3, method, path, headers, body)
            }
        }
    }

    /// The S3 gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.s3
    }

    /// The server's data directory.
    pub fn dir(&self) -> &PathBuf {
        &self.dir.0
    }

    /// Creates `bucket` (anonymous access: the server has no identities configured).
    /// SeaweedFS creates buckets lazily, so this waits until an object can be written:
    /// a probe object is put and deleted.
    pub fn create_bucket(&self, bucket: &str) -> Result<(), SeaweedError> {
        let (status, _) = self.request("PUT", &format!("/{bucket}"), &[], b"")?;
        if !status.contains(" 200") {
            return Err(SeaweedError::Bucket {
                bucket: bucket.to_owned(),
                status,
            });
        }
        Ok(())
    }

    /// The environment `object_store` (and `sigupdate --publish s3://...`) needs for
    /// this server: endpoint, plain HTTP allowed (not in HTTPS mode), a region and
    /// (ignored) credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("AWS_ENDPOINT_URL", self.endpoint())];
        if self.tls.is_none() {
            env.push(("AWS_ALLOW_HTTP", "true".to_owned()));
        }
        env.extend([
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testkit".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testkit-secret".to_owned()),
        ]);
        env
    }

    /// The same as object_store configuration keys (for in-process stores).
    pub fn store_options(&self) -> Vec<(&'static str, String)> {
        let mut opts = vec![("aws_endpoint", self.endpoint())];
        if self.tls.is_none() {
            opts.push(("aws_allow_http", "true".to_owned()));
        }
        opts.extend([
            ("aws_region", "us-east-1".to_owned()),
            ("aws_access_key_id", "testkit".to_owned()),
            ("aws_secret_access_key", "testkit-secret".to_owned()),
        ]);
        opts
    }
}

/// One plain HTTP/1.1 request (`Connection: close`): the status line and the body.
///
/// # Errors
///
/// When the connection or the exchange fails.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    exchange(&mut s, addr, method, path, headers, body)
}

/// Writes one `Connection: close` request to `s` and reads the whole answer.
fn exchange(
    s: &mut (impl Read + Write),
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // a TLS peer that closes without close_notify, after a whole answer
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    let status = String::from_utf8_lossy(&out[..split])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((status, out[split..].to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    #[test]
    fn serves_s3_over_https_with_a_private_ca() {
        let dir = std::env::temp_dir().join(format!("testkit-s3-tls-{}", std::process::id()));
        let pki = crate::tls::TestPki::new(&dir).unwrap();
        let Some(weed) = SeaweedFs::start_tls(&pki.server).unwrap() else {
            return;
        };
        assert!(weed.is_tls());
        assert_eq!(weed.endpoint(), format!("https://{}", weed.addr()));
        assert!(!weed.aws_env().iter().any(|(k, _)| *k == "AWS_ALLOW_HTTP"));
        weed.create_bucket("tls-bucket").unwrap();
        let (status, _) = weed.request("PUT", "/tls-bucket/k", &[], b"v").unwrap();
        assert!(status.contains(" 200"), "{status}");
        let (status, body) = weed.request("GET", "/tls-bucket/k", &[], b"").unwrap();
        assert!(status.contains(" 200") && body == b"v", "{status}");
        // plain HTTP is not served on the S3 port
        let (status, _) = request(weed.addr(), "GET", "/tls-bucket/k", &[], b"").unwrap();
        assert!(status.contains(" 400"), "{status}");
        drop(weed);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
