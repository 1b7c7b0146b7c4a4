//! A real S3-compatible store for tests, benches and xtask: SeaweedFS (`weed server
//! -s3`, found by [`crate::tools::require_weed`]) on loopback ports of its own, in a
//! temporary directory, killed on drop.
//!
//! Every port `weed server` opens is given explicitly (master, volume, filer, S3, their
//! gRPC ports, the Iceberg and Lance ports), each a free port the system chose, so that
//! parallel tests and other services never collide. The server runs under a small
//! shell watchdog in its own process group: [`SeaweedFs`]'s drop kills the group, and
//! the watchdog kills the server when the test process dies without dropping it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running SeaweedFS with its S3 gateway.
#[derive(Debug)]
pub struct SeaweedFs {
    child: Child,
    s3: SocketAddr,
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
        Self::start_with(&weed).map(Some)
    }

    /// Starts the given `weed` executable.
    pub fn start_with(weed: &Path) -> Result<SeaweedFs, SeaweedError> {
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
        let s3 = SocketAddr::from(([127, 0, 0, 1], ports[6]));
        let log = dir.0.join("weed.log");
        // The watchdog: kills weed when the test process (its parent's pid, given) dies.
        let script = r#"w="$1"; shift; log="$1"; shift; parent="$1"; shift
"$w" "$@" >"$log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; wait $pid; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.5; done
kill -9 $pid 2>/dev/null; wait $pid"#;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("weed-watchdog")
            .arg(weed)
            .arg(&log)
            .arg(std::process::id().to_string())
            .args(&args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn()?;
        let server = SeaweedFs { child, s3, dir };
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            // ready when the gateway answers a bucket listing with any HTTP status
            if let Ok((status, _)) = request(s3, "GET", "/", &[], b"")
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

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3)
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
        let (status, _) = request(self.s3, "PUT", &format!("/{bucket}"), &[], b"")?;
        if !status.contains(" 200") {
            return Err(SeaweedError::Bucket {
                bucket: bucket.to_owned(),
                status,
            });
        }
        Ok(())
    }

    /// The environment `object_store` (and `sigupdate --publish s3://...`) needs for
    /// this server: endpoint, plain HTTP, a region and (ignored) credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testkit".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testkit-secret".to_owned()),
        ]
    }

    /// The same as object_store configuration keys (for in-process stores).
    pub fn store_options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_region", "us-east-1".to_owned()),
            ("aws_access_key_id", "testkit".to_owned()),
            ("aws_secret_access_key", "testkit-secret".to_owned()),
        ]
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        // the watchdog's TERM trap kills weed and waits for it
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
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
    s.read_to_end(&mut out)?;
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
