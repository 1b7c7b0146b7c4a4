//! `sigserver --dir DIR --listen ADDR:PORT [--config FILE]`
//!
//! Exit codes: 0 clean shutdown, 1 runtime failure (e.g. cannot bind),
//! 2 usage or configuration error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use cli_config::{KeyStyle, Layers, Source, Spec};
use serde::{Deserialize, Serialize};
use sigserver::sync_loop::MirrorCoreSync;
use sigserver::{Config, Server};

mod service;

/// HTTP server for a ClamAV signature mirror directory.
///
/// Serves DIR/current (the snapshot published by `sigupdate sync --dir DIR`) or, when
/// there is no DIR/current, DIR itself as a plain directory of database files.
/// Endpoints: /<db>.cvd, /<db>.cld, /<db>-<v>.cdiff, /<db>-<v>.cvd.sign,
/// /<db>-<v>.cdiff.sign, /dns.txt, /health, /ready, /metrics.
///
/// Every option can also come from the environment (SIGSERVER_<OPTION>) or the TOML
/// file given with --config (same names with `_`: `max_connections = 20000`);
/// precedence: flags > environment > file > defaults. Booleans take true/false in
/// every layer (--sync=false undoes `sync = true`). --print-config prints the
/// effective configuration with the source of each value. Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 runtime failure
/// (e.g. cannot bind), 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "sigserver", version, about, long_about)]
struct Cli {
    /// Mirror directory to serve (required here, in the environment or in the file).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080 or [::]:8080; repeat for several
    /// (environment: comma-separated).
    #[arg(long, value_name = "ADDR:PORT", value_delimiter = ',')]
    listen: Vec<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Most simultaneously open connections; more wait in the accept queue [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Largest request head (request line + headers) in bytes, 8192..=1048576; larger
    /// heads get 431 [default: 16384].
    #[arg(long, value_name = "BYTES")]
    max_header_bytes: Option<usize>,
    /// Seconds allowed to send a complete request head, and to stay idle between
    /// requests on a kept-alive connection [default: 10].
    #[arg(long, value_name = "SECS")]
    header_timeout: Option<u64>,
    /// Seconds a connection may make no progress at all (no byte read or written)
    /// before it is closed: slow or stalled clients [default: 60].
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// /ready answers 503 when the last successful sync is older than this many
    /// seconds [default: 86400].
    #[arg(long, value_name = "SECS")]
    ready_max_age: Option<u64>,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT [default: 30].
    #[arg(long, value_name = "SECS")]
    shutdown_timeout: Option<u64>,
    /// Per-client request rate limit (requests per second; a client is an IPv4 address
    /// or an IPv6 /64; excess gets 429 with Retry-After). Off by default. /health,
    /// /ready, /metrics are never limited.
    #[arg(long, value_name = "PER_SEC")]
    rate_limit: Option<f64>,
    /// Burst allowance of --rate-limit [default: twice the rate, at least 1].
    #[arg(long, value_name = "N")]
    rate_burst: Option<u32>,
    /// Access log line per request: true or false [default: true].
    #[arg(long, value_name = "BOOL")]
    access_log: Option<bool>,
    /// Log format on stderr [default: text]. Filter with SIGSERVER_LOG (e.g. `info`,
    /// `sigserver::access=off`).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Also speak HTTP/2 (prior knowledge on plain TCP, ALPN on TLS) [default: true].
    #[arg(long, value_name = "BOOL")]
    http2: Option<bool>,
    /// Send file bodies of 16 KiB and more with sendfile(2) on plain-TCP HTTP/1
    /// connections (Linux) instead of copying them through user space [default: true].
    #[arg(long, value_name = "BOOL")]
    sendfile: Option<bool>,
    /// Worker threads, each with its own event loop accepting and serving its own
    /// connections [default: number of CPUs].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Bytes read from a file and written per body chunk, 4096..=4194304; bounds the
    /// memory per connection [default: 65536].
    #[arg(long, value_name = "BYTES")]
    chunk_bytes: Option<usize>,
    /// Total bytes of the in-memory cache of small files (0 turns it off)
    /// [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    cache_bytes: Option<u64>,
    /// Largest file kept in the cache; larger files are streamed from disk
    /// [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    cache_max_file: Option<u64>,
    /// Also keep the mirror in sync, in-process (the engine of `sigupdate sync`): one
    /// sync at start, then every --sync-interval seconds. Needs --upstream and --db
    /// (--sync alone: true; --sync=false or --no-sync undoes a file or environment)
    /// [default: false].
    #[arg(long, value_name = "BOOL")]
    sync: Option<bool>,
    /// Do not sync in-process: --sync=false.
    #[arg(long, value_name = "BOOL")]
    no_sync: Option<bool>,
    /// Seconds between in-process syncs [default: 3600].
    #[arg(long, value_name = "SECS")]
    sync_interval: Option<u64>,
    /// Up to this many random extra seconds per wait between syncs, so that many
    /// mirrors do not poll upstream at the same second [default: 0].
    #[arg(long, value_name = "SECS")]
    sync_jitter: Option<u64>,
    /// With --sync: the mirror settings, as for `sigupdate sync` (--upstream and --db
    /// have no default here).
    #[command(flatten, next_help_heading = "With --sync (as for `sigupdate sync`)")]
    mirror: cli_config::MirrorArgs,
    /// With --sync: push notices (as for `sigupdate watch`). Notices are taken on the
    /// server's own listeners (`POST /push`), or only on --push-listen when given.
    #[command(
        flatten,
        next_help_heading = "With --sync: push (a network of mirrors)"
    )]
    push: cli_config::PushArgs,
    /// `/ready` answers 503 when a version announced by upstream or by a push notice
    /// is not published this many seconds later [default: 600].
    #[arg(long, value_name = "SECS")]
    ready_lag: Option<u64>,
    /// When provably behind for a database (/ready answers 503 for lag), answer
    /// requests for what this mirror lacks of it (its .cvd/.cld, cdiffs above the
    /// served version, their .sign) with 302 to URL + the same path; with DNS on,
    /// announce the newest known version meanwhile [default: off].
    #[arg(long, value_name = "URL")]
    behind_redirect: Option<String>,
    /// Admin listener address (plain HTTP/1.1): serves only /health, /ready, /metrics,
    /// /trace, /status and /status.json, never database files; repeat for several.
    #[arg(long, value_name = "ADDR:PORT", value_delimiter = ',')]
    admin_listen: Vec<SocketAddr>,
    /// Serve /status and /status.json only on --admin-listen (404 on --listen)
    /// [default: false].
    #[arg(long, value_name = "BOOL")]
    status_admin_only: Option<bool>,
    /// Downstream mirror whose /status.json the status page's network view polls
    /// (push or base URL; repeat for several) [default: the push downstreams].
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    status_downstream: Vec<String>,
    /// Seconds between two polls of the downstreams' /status.json [default: 30].
    #[arg(long, value_name = "SECS")]
    status_poll: Option<u64>,
    /// Print the effective configuration, each value with its source (default, file,
    /// environment variable, flag), and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    dns: DnsArgs,
}

/// The version record over DNS (file keys `dns_listen`, `dns_zone`, ...; see README).
#[derive(Debug, clap::Args)]
struct DnsArgs {
    /// Answer the version TXT record over DNS (UDP and TCP) on this address, e.g.
    /// 0.0.0.0:53; repeat for several (environment: comma-separated). Needs --dns-zone.
    #[arg(long, value_name = "ADDR:PORT", value_delimiter = ',')]
    dns_listen: Vec<SocketAddr>,
    /// The record's name, which clients set as DNSDatabaseInfo, e.g.
    /// current.cvd.mirror.example (we are authoritative for it).
    #[arg(long, value_name = "NAME")]
    dns_zone: Option<String>,
    /// Also answer <db>.cvd.NAME and current.cvd.NAME (NAME is clamav.net for
    /// freshclam's hard-coded per-database names; split-horizon set-ups).
    #[arg(long = "dns-extra-zone", value_name = "NAME")]
    dns_extra_zone: Option<String>,
    /// Name server name in NS/SOA: the name the parent zone delegates to
    /// [default: the zone name].
    #[arg(long, value_name = "NAME")]
    dns_ns: Option<String>,
    /// TTL of the DNS records in seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    dns_ttl: Option<u64>,
    /// UDP queries per second per source /32 or /64; 0 turns the limit off [default: 20].
    #[arg(long = "dns-rate-limit", value_name = "PER_SEC")]
    dns_rate_limit: Option<f64>,
    /// Burst of --dns-rate-limit [default: twice the rate].
    #[arg(long = "dns-rate-burst", value_name = "N")]
    dns_rate_burst: Option<u32>,
}

/// sigserver's conventions: `SIGSERVER_*` variables, snake_case file keys.
const SPEC: Spec = Spec {
    env_prefix: "SIGSERVER_",
    keys: KeyStyle::Snake,
    flag_only: &["print_config"],
    not_in_file: &["config"],
    other_env: &["LOG"],
    env_families: cli_config::MIRROR_ENV_FAMILIES,
    file_tables: cli_config::MIRROR_FILE_TABLES,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    Text,
    Json,
}

struct Settings {
    config: Config,
    log_format: LogFormat,
    sync: Option<SyncSettings>,
}

/// The in-process sync loop and its push side.
struct SyncSettings {
    engine: MirrorCoreSync,
    every: Duration,
    jitter: Duration,
    hub: std::sync::Arc<push::PushHub>,
    push: push::PushSettings,
}

/// The configuration as the same command line, environment and (re-read) file give it
/// now: what `SIGHUP` applies.
fn reread_config() -> anyhow::Result<Config> {
    let cmd = SPEC.prepare(Cli::command());
    let m = cmd.clone().try_get_matches()?;
    let cli = Cli::from_arg_matches(&m)?;
    match settings(&cli, &cmd, &m)? {
        (Some(s), _) => Ok(s.config),
        (None, _) => anyhow::bail!("--print-config: nothing to reload"),
    }
}

/// Resolves flags > environment > file > defaults (one mechanism, `cli-config`, as in
/// `sigupdate`). Returns the effective configuration with sources and, unless
/// `--print-config` only asks for that, the checked settings.
fn settings(
    cli: &Cli,
    cmd: &clap::Command,
    m: &clap::ArgMatches,
) -> anyhow::Result<(Option<Settings>, String)> {
    use sigserver::config as d;
    let mut l = Layers::new(
        &SPEC,
        cmd,
        &[cmd],
        m,
        cli.config.as_deref(),
        std::env::vars(),
    )?;
    let dir: PathBuf = l
        .optional("dir")?
        .context("--dir is required (or SIGSERVER_DIR, or `dir` in the config file)")?;
    let listen: Vec<SocketAddr> = l.list("listen", Vec::new())?;
    let tls_cert: Option<PathBuf> = l.optional("tls_cert")?;
    let tls_key: Option<PathBuf> = l.optional("tls_key")?;
    let secs = Duration::from_secs;
    let mut b = Config::builder(dir.clone())
        .listen(listen)
        .max_connections(l.value("max_connections", d::DEFAULT_MAX_CONNECTIONS)?)
        .max_header_bytes(l.value("max_header_bytes", d::DEFAULT_MAX_HEADER_BYTES)?)
        .header_timeout(secs(
            l.value("header_timeout", d::DEFAULT_HEADER_TIMEOUT.as_secs())?,
        ))
        .idle_timeout(secs(
            l.value("idle_timeout", d::DEFAULT_IDLE_TIMEOUT.as_secs())?,
        ))
        .ready_max_age(secs(
            l.value("ready_max_age", d::DEFAULT_READY_MAX_AGE.as_secs())?,
        ))
        .ready_lag(secs(l.value("ready_lag", d::DEFAULT_READY_LAG.as_secs())?))
        .shutdown_timeout(secs(
            l.value("shutdown_timeout", d::DEFAULT_SHUTDOWN_TIMEOUT.as_secs())?,
        ));
    match (tls_cert, tls_key) {
        (Some(c), Some(k)) => b = b.tls(c, k),
        (None, None) => {}
        _ => anyhow::bail!("--tls-cert and --tls-key must be given together"),
    }
    let rate: Option<f64> = l.optional("rate_limit")?;
    let burst: Option<u32> = l.optional("rate_burst")?;
    if let Some(rate) = rate {
        let burst = burst.unwrap_or_else(|| ((rate * 2.0).ceil() as u32).max(1));
        b = b.rate_limit(rate, burst);
    }
    if let Some(url) = l.optional::<String>("behind_redirect")? {
        b = b.behind_redirect(url);
    }
    b = b.access_log(l.value("access_log", true)?);
    let log_format = l.value("log_format", LogFormat::Text)?;
    b = b
        .http2(l.value("http2", true)?)
        .sendfile(l.value("sendfile", true)?);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    b = b
        .workers(l.value("workers", workers)?)
        .chunk_bytes(l.value("chunk_bytes", d::DEFAULT_CHUNK_BYTES)?)
        .cache(
            l.value("cache_bytes", d::DEFAULT_CACHE_BYTES)?,
            l.value("cache_max_file", d::DEFAULT_CACHE_MAX_FILE)?,
        );
    let dns = sigserver::dns::DnsSettings {
        listen: Some(l.list("dns_listen", Vec::new())?),
        zone: l.optional("dns_zone")?,
        extra_zone: l.optional("dns_extra_zone")?,
        ns: l.optional("dns_ns")?,
        ttl: l.optional("dns_ttl")?,
        rate_limit: l.optional("dns_rate_limit")?,
        rate_burst: l.optional("dns_rate_burst")?,
    };
    if let Some(dns) = dns.into_config()? {
        b = b.dns(dns);
    }
    let sync = l.negatable("sync", false)?;
    let interval = l.value("sync_interval", 3600u64)?;
    let jitter = l.value("sync_jitter", 0u64)?;
    let admin_listen: Vec<SocketAddr> = l.list("admin_listen", Vec::new())?;
    let status_admin_only = l.value("status_admin_only", false)?;
    let status_downstream: Vec<String> = l.list("status_downstream", Vec::new())?;
    let status_poll = l.value("status_poll", d::DEFAULT_NETWORK_POLL.as_secs())?;
    b = b
        .admin_listen(admin_listen)
        .status_admin_only(status_admin_only)
        .network_poll(secs(status_poll));
    let mirror = cli_config::resolve_mirror(&mut l, dir.clone())?;
    let push = cli_config::resolve_push(&mut l, &mirror.http)?;
    // The network view's polls use the operator's CA and proxy, like every request.
    b = b.network_http(mirror.http.clone());
    // The status page: this mirror's name, upstreams and the downstreams it polls.
    if sync {
        b = b
            .status_upstreams(mirror.upstreams.clone())
            .status_version_source(if mirror.dns {
                "DNS TXT, else manifest or headers"
            } else {
                "manifest or headers"
            });
    }
    b = b.status_name(push.name.clone());
    b = b.network_downstreams(if status_downstream.is_empty() {
        // URLs only: a pair's key file never reaches the status page.
        push.downstreams
            .iter()
            .map(|(url, _)| url.clone())
            .collect()
    } else {
        status_downstream
    });
    let text = l.render();
    if cli.print_config {
        return Ok((None, text));
    }
    let sync = if sync {
        // Unlike `sigupdate`, a server does not start mirroring the official CDN on a
        // bare --sync: where from and what are said explicitly.
        let unset = |key: &str| {
            l.entries()
                .iter()
                .any(|e| e.table.is_none() && e.key == key && e.source == Source::Default)
        };
        if unset("upstream") || unset("db") {
            anyhow::bail!("--sync needs at least one --upstream and one --db");
        }
        if interval == 0 {
            anyhow::bail!("--sync-interval must be at least 1 second");
        }
        let hub = push.hub(&dir)?;
        if push.listen.is_none() {
            b = b.push(hub.clone());
        }
        Some(SyncSettings {
            engine: MirrorCoreSync::new(mirror, &push.name)?,
            every: secs(interval),
            jitter: secs(jitter),
            hub,
            push,
        })
    } else {
        if push.enabled() {
            anyhow::bail!(
                "push settings need --sync (the process that syncs takes the notices; \
                 with a separate syncer, give them to `sigupdate watch`)"
            );
        }
        None
    };
    Ok((
        Some(Settings {
            config: b.build()?,
            log_format,
            sync,
        }),
        text,
    ))
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
    if let Some(code) = cli_assets::generate_if_asked::<Cli>() {
        return code; // hidden `--generate-assets DIR`: man page and completions
    }
    // Every option gets its SIGSERVER_* variable before parsing (see `SPEC`).
    let cmd = SPEC.prepare(Cli::command());
    let (cli, matches) = match cmd
        .clone()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)))
    {
        Ok(x) => x,
        // usage errors exit with 2, --help/--version with 0
        Err(e) => {
            cli_config::name_env_in_error(&SPEC, e, std::env::args(), std::env::vars()).exit()
        }
    };
    let s = match settings(&cli, &cmd, &matches) {
        Ok((Some(s), _)) => s,
        Ok((None, text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
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
        let dir = s.config.dir().to_path_buf();
        let server = match Server::bind(s.config).await {
            Ok(srv) => srv,
            Err(e) => {
                tracing::error!("{e}");
                return if e.is_config() { 2 } else { 1 };
            }
        };
        // sd_notify readiness/status/watchdog, and SIGHUP re-reading the configuration.
        service::start(dir, s.sync.is_some(), server.reloader(), reread_config);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut syncer = None;
        if let Some(sync) = s.sync {
            if let Some(addr) = sync.push.listen {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => {
                        tracing::info!(addr = %addr, "push listener ready");
                        let mut stop = stop_rx.clone();
                        tokio::spawn(push::listener::serve(l, sync.hub.clone(), async move {
                            let _ = stop.wait_for(|v| *v).await;
                        }));
                    }
                    Err(e) => {
                        tracing::error!("binding the push listener {addr}: {e}");
                        return 1;
                    }
                }
            }
            if sync.push.dns_watch_secs > 0 {
                push::dns_watch::spawn(
                    sync.engine.settings(),
                    &sync.hub,
                    sync.push.dns_watch_secs,
                    stop_rx.clone(),
                );
            }
            let mut stop = stop_rx;
            syncer = Some(tokio::spawn(sigserver::sync_loop::run(
                std::sync::Arc::new(sync.engine),
                sync.hub,
                sigserver::sync_loop::Every {
                    interval: sync.every,
                    jitter: sync.jitter,
                },
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            )));
        }
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
