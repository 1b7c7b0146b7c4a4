//! `sigserver --dir DIR --listen ADDR:PORT [--config FILE]`
//!
//! Exit codes: 0 clean shutdown, 1 runtime failure (e.g. cannot bind),
//! 2 usage or configuration error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use sigserver::config::FileConfig;
use sigserver::sync_loop::MirrorCoreSync;
use sigserver::{Config, Server};

/// HTTP server for a ClamAV signature mirror directory.
///
/// Serves DIR/current (the snapshot published by `sigupdate sync --dir DIR`) or, when
/// there is no DIR/current, DIR itself as a plain directory of database files.
/// Endpoints: /<db>.cvd, /<db>.cld, /<db>-<v>.cdiff, /<db>-<v>.cvd.sign,
/// /<db>-<v>.cdiff.sign, /dns.txt, /health, /ready, /metrics.
///
/// Every option can also come from the environment (SIGSERVER_<OPTION>) or the TOML
/// file given with --config (same names with `_`); precedence: flags > environment >
/// file > defaults. Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 runtime failure
/// (e.g. cannot bind), 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "sigserver", version, about, long_about)]
struct Cli {
    /// Mirror directory to serve (required here, in the environment or in the file).
    #[arg(long, env = "SIGSERVER_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080 or [::]:8080; repeat for several
    /// (environment: comma-separated).
    #[arg(
        long,
        env = "SIGSERVER_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    listen: Vec<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, env = "SIGSERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, env = "SIGSERVER_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "SIGSERVER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Most simultaneously open connections; more wait in the accept queue [default: 10000].
    #[arg(long, env = "SIGSERVER_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Largest request head (request line + headers) in bytes, 8192..=1048576; larger
    /// heads get 431 [default: 16384].
    #[arg(long, env = "SIGSERVER_MAX_HEADER_BYTES", value_name = "BYTES")]
    max_header_bytes: Option<usize>,
    /// Seconds allowed to send a complete request head, and to stay idle between
    /// requests on a kept-alive connection [default: 10].
    #[arg(long, env = "SIGSERVER_HEADER_TIMEOUT", value_name = "SECS")]
    header_timeout: Option<u64>,
    /// Seconds a connection may make no progress at all (no byte read or written)
    /// before it is closed: slow or stalled clients [default: 60].
    #[arg(long, env = "SIGSERVER_IDLE_TIMEOUT", value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// /ready answers 503 when the last successful sync is older than this many
    /// seconds [default: 86400].
    #[arg(long, env = "SIGSERVER_READY_MAX_AGE", value_name = "SECS")]
    ready_max_age: Option<u64>,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT [default: 30].
    #[arg(long, env = "SIGSERVER_SHUTDOWN_TIMEOUT", value_name = "SECS")]
    shutdown_timeout: Option<u64>,
    /// Per-client-IP request rate limit (requests per second; excess gets 429 with
    /// Retry-After). Off by default. /health, /ready, /metrics are never limited.
    #[arg(long, env = "SIGSERVER_RATE_LIMIT", value_name = "PER_SEC")]
    rate_limit: Option<f64>,
    /// Burst allowance of --rate-limit [default: twice the rate, at least 1].
    #[arg(long, env = "SIGSERVER_RATE_BURST", value_name = "N")]
    rate_burst: Option<u32>,
    /// Access log line per request: true or false [default: true].
    #[arg(long, env = "SIGSERVER_ACCESS_LOG", value_name = "BOOL")]
    access_log: Option<bool>,
    /// Log format on stderr [default: text]. Filter with SIGSERVER_LOG (e.g. `info`,
    /// `sigserver::access=off`).
    #[arg(long, env = "SIGSERVER_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Also speak HTTP/2 (prior knowledge on plain TCP, ALPN on TLS) [default: true].
    #[arg(long, env = "SIGSERVER_HTTP2", value_name = "BOOL")]
    http2: Option<bool>,
    /// Send file bodies of 16 KiB and more with sendfile(2) on plain-TCP HTTP/1
    /// connections (Linux) instead of copying them through user space [default: true].
    #[arg(long, env = "SIGSERVER_SENDFILE", value_name = "BOOL")]
    sendfile: Option<bool>,
    /// Worker threads, each with its own event loop accepting and serving its own
    /// connections [default: number of CPUs].
    #[arg(long, env = "SIGSERVER_WORKERS", value_name = "N")]
    workers: Option<usize>,
    /// Bytes read from a file and written per body chunk, 4096..=4194304; bounds the
    /// memory per connection [default: 65536].
    #[arg(long, env = "SIGSERVER_CHUNK_BYTES", value_name = "BYTES")]
    chunk_bytes: Option<usize>,
    /// Total bytes of the in-memory cache of small files (0 turns it off)
    /// [default: 67108864].
    #[arg(long, env = "SIGSERVER_CACHE_BYTES", value_name = "BYTES")]
    cache_bytes: Option<u64>,
    /// Largest file kept in the cache; larger files are streamed from disk
    /// [default: 1048576].
    #[arg(long, env = "SIGSERVER_CACHE_MAX_FILE", value_name = "BYTES")]
    cache_max_file: Option<u64>,
    /// Also keep the mirror in sync, in-process (the engine of `sigupdate sync`): one
    /// sync at start, then every --sync-interval seconds. Needs --upstream and --db.
    #[arg(long, env = "SIGSERVER_SYNC")]
    sync: bool,
    /// Seconds between in-process syncs [default: 3600].
    #[arg(long, env = "SIGSERVER_SYNC_INTERVAL", value_name = "SECS")]
    sync_interval: Option<u64>,
    /// With --sync: upstream base URL, e.g. https://database.clamav.net; repeat for
    /// failover, in order (environment: comma-separated).
    #[arg(
        long,
        env = "SIGSERVER_UPSTREAM",
        value_name = "URL",
        value_delimiter = ','
    )]
    upstream: Vec<String>,
    /// With --sync: database to mirror (daily, main, bytecode, ...); repeat for several
    /// (environment: comma-separated).
    #[arg(long, env = "SIGSERVER_DB", value_name = "NAME", value_delimiter = ',')]
    db: Vec<String>,
    /// With --sync: learn versions from the upstream's dns.txt or .cvd headers, not DNS.
    #[arg(long, env = "SIGSERVER_NO_DNS")]
    no_dns: bool,
    /// With --sync: root certificate (PEM or DER) .sign files must chain to, instead of
    /// the official one; repeat for several.
    #[arg(
        long,
        env = "SIGSERVER_SIGN_ROOT",
        value_name = "FILE",
        value_delimiter = ','
    )]
    sign_root: Vec<PathBuf>,
    #[command(flatten)]
    dns: DnsArgs,
}

/// The version record over DNS (the `[dns]` table of the file; see README).
#[derive(Debug, clap::Args)]
struct DnsArgs {
    /// Answer the version TXT record over DNS (UDP and TCP) on this address, e.g.
    /// 0.0.0.0:53; repeat for several (environment: comma-separated). Needs --dns-zone.
    #[arg(
        long,
        env = "SIGSERVER_DNS_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    dns_listen: Vec<SocketAddr>,
    /// The record's name, which clients set as DNSDatabaseInfo, e.g.
    /// current.cvd.mirror.example (we are authoritative for it).
    #[arg(long, env = "SIGSERVER_DNS_ZONE", value_name = "NAME")]
    dns_zone: Option<String>,
    /// Also answer <db>.cvd.NAME and current.cvd.NAME (NAME is clamav.net for
    /// freshclam's hard-coded per-database names; split-horizon set-ups).
    #[arg(
        long = "dns-extra-zone",
        env = "SIGSERVER_DNS_EXTRA_ZONE",
        value_name = "NAME"
    )]
    dns_extra_zone: Option<String>,
    /// Name server name in NS/SOA: the name the parent zone delegates to
    /// [default: the zone name].
    #[arg(long, env = "SIGSERVER_DNS_NS", value_name = "NAME")]
    dns_ns: Option<String>,
    /// TTL of the DNS records in seconds [default: 60].
    #[arg(long, env = "SIGSERVER_DNS_TTL", value_name = "SECS")]
    dns_ttl: Option<u64>,
    /// UDP queries per second per source /32 or /64; 0 turns the limit off [default: 20].
    #[arg(
        long = "dns-rate-limit",
        env = "SIGSERVER_DNS_RATE_LIMIT",
        value_name = "PER_SEC"
    )]
    dns_rate_limit: Option<f64>,
    /// Burst of --dns-rate-limit [default: twice the rate].
    #[arg(
        long = "dns-rate-burst",
        env = "SIGSERVER_DNS_RATE_BURST",
        value_name = "N"
    )]
    dns_rate_burst: Option<u32>,
}

impl DnsArgs {
    fn settings(self) -> sigserver::dns::DnsSettings {
        sigserver::dns::DnsSettings {
            listen: Some(self.dns_listen),
            zone: self.dns_zone,
            extra_zone: self.dns_extra_zone,
            ns: self.dns_ns,
            ttl: self.dns_ttl,
            rate_limit: self.dns_rate_limit,
            rate_burst: self.dns_rate_burst,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

struct Settings {
    config: Config,
    log_format: LogFormat,
    sync: Option<(MirrorCoreSync, Duration)>,
}

fn sync_engine(
    dir: &std::path::Path,
    upstreams: &[String],
    dbs: &[String],
    no_dns: bool,
    roots: &[PathBuf],
) -> anyhow::Result<MirrorCoreSync> {
    if upstreams.is_empty() || dbs.is_empty() {
        anyhow::bail!("--sync needs at least one --upstream and one --db");
    }
    let mut b = mirror_core::SyncConfig::builder(dir).versions(if no_dns {
        mirror_core::VersionSource::NoDns
    } else {
        mirror_core::VersionSource::Dns {
            name: "current.cvd.clamav.net".to_owned(),
        }
    });
    for u in upstreams {
        b = b.upstream(u);
    }
    for d in dbs {
        b = b.database(mirror_core::DatabaseSpec::new(d)?);
    }
    if !roots.is_empty() {
        let mut set = cvd_format::sign::SignRoots::empty();
        for p in roots {
            let bytes =
                std::fs::read(p).with_context(|| format!("reading --sign-root {}", p.display()))?;
            if bytes.starts_with(b"-----BEGIN") {
                set.add_pem(&bytes)
            } else {
                set.add_der(&bytes)
            }
            .with_context(|| format!("--sign-root {}", p.display()))?;
        }
        b = b.sign_roots(set);
    }
    Ok(MirrorCoreSync::new(b.build()?, !no_dns))
}

fn settings(cli: Cli) -> anyhow::Result<Settings> {
    let file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let dir = cli
        .dir
        .or(file.dir)
        .context("--dir is required (or SIGSERVER_DIR, or `dir` in the config file)")?;
    let sync = if cli.sync || file.sync == Some(true) {
        let upstreams = if cli.upstream.is_empty() {
            file.upstream.clone().unwrap_or_default()
        } else {
            cli.upstream.clone()
        };
        let dbs = if cli.db.is_empty() {
            file.db.clone().unwrap_or_default()
        } else {
            cli.db.clone()
        };
        let no_dns = cli.no_dns || file.no_dns == Some(true);
        let roots = if cli.sign_root.is_empty() {
            file.sign_root.clone().unwrap_or_default()
        } else {
            cli.sign_root.clone()
        };
        let secs = cli.sync_interval.or(file.sync_interval).unwrap_or(3600);
        if secs == 0 {
            anyhow::bail!("--sync-interval must be at least 1 second");
        }
        Some((
            sync_engine(&dir, &upstreams, &dbs, no_dns, &roots)?,
            Duration::from_secs(secs),
        ))
    } else {
        None
    };
    let listen = if cli.listen.is_empty() {
        file.listen.unwrap_or_default()
    } else {
        cli.listen
    };
    let mut b = Config::builder(dir).listen(listen);
    match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
        (Some(c), Some(k)) => b = b.tls(c, k),
        (None, None) => {}
        _ => anyhow::bail!("--tls-cert and --tls-key must be given together"),
    }
    if let Some(n) = cli.max_connections.or(file.max_connections) {
        b = b.max_connections(n);
    }
    if let Some(n) = cli.max_header_bytes.or(file.max_header_bytes) {
        b = b.max_header_bytes(n);
    }
    let secs = Duration::from_secs;
    if let Some(s) = cli.header_timeout.or(file.header_timeout) {
        b = b.header_timeout(secs(s));
    }
    if let Some(s) = cli.idle_timeout.or(file.idle_timeout) {
        b = b.idle_timeout(secs(s));
    }
    if let Some(s) = cli.ready_max_age.or(file.ready_max_age) {
        b = b.ready_max_age(secs(s));
    }
    if let Some(s) = cli.shutdown_timeout.or(file.shutdown_timeout) {
        b = b.shutdown_timeout(secs(s));
    }
    if let Some(rate) = cli.rate_limit.or(file.rate_limit) {
        let burst = cli
            .rate_burst
            .or(file.rate_burst)
            .unwrap_or_else(|| ((rate * 2.0).ceil() as u32).max(1));
        b = b.rate_limit(rate, burst);
    }
    if let Some(on) = cli.access_log.or(file.access_log) {
        b = b.access_log(on);
    }
    if let Some(on) = cli.http2.or(file.http2) {
        b = b.http2(on);
    }
    if let Some(on) = cli.sendfile.or(file.sendfile) {
        b = b.sendfile(on);
    }
    let log_format = match (cli.log_format, file.log_format.as_deref()) {
        (Some(f), _) => f,
        (None, None | Some("text")) => LogFormat::Text,
        (None, Some("json")) => LogFormat::Json,
        (None, Some(other)) => {
            anyhow::bail!("log_format: {other:?} is neither \"text\" nor \"json\"")
        }
    };
    if let Some(n) = cli.chunk_bytes.or(file.chunk_bytes) {
        b = b.chunk_bytes(n);
    }
    b = b.cache(
        cli.cache_bytes
            .or(file.cache_bytes)
            .unwrap_or(sigserver::config::DEFAULT_CACHE_BYTES),
        cli.cache_max_file
            .or(file.cache_max_file)
            .unwrap_or(sigserver::config::DEFAULT_CACHE_MAX_FILE),
    );
    if let Some(n) = cli.workers.or(file.workers) {
        b = b.workers(n);
    }
    if let Some(dns) = file
        .dns
        .unwrap_or_default()
        .overridden_by(cli.dns.settings())
        .into_config()?
    {
        b = b.dns(dns);
    }
    Ok(Settings {
        config: b.build()?,
        log_format,
        sync,
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGSERVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => tracing::info!("SIGTERM received"),
                _ = i.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with 2, --help/--version with 0
    let s = match settings(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sigserver: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(s.log_format);
    // This runtime only waits for signals and coordinates; the server runs its own
    // worker threads (see `Config::workers`).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        let server = match Server::bind(s.config).await {
            Ok(srv) => srv,
            Err(e) => {
                tracing::error!("{e}");
                return if e.is_config() { 2 } else { 1 };
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let syncer = s.sync.map(|(engine, every)| {
            let mut stop = stop_rx;
            tokio::spawn(sigserver::sync_loop::run(
                std::sync::Arc::new(engine),
                every,
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            ))
        });
        let code = match server.run(shutdown_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("{e}");
                1
            }
        };
        let _ = stop_tx.send(true);
        if let Some(task) = syncer {
            let _ = task.await;
        }
        code
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}
