//! Listening, accepting, per-connection limits and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2::Builder as H2Builder;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::error::Error;
use crate::idle::{IdleTimeout, Rewind};
use crate::serve::State;
use crate::{h1, http2};

/// Listen backlog: connections beyond `max_connections` wait here.
const BACKLOG: u32 = 4096;

/// A bound, not yet running server.
///
/// ```no_run
/// # async fn demo() -> Result<(), sigserver::Error> {
/// let cfg = sigserver::Config::builder("/srv/mirror")
///     .listen(["127.0.0.1:8080".parse().unwrap()])
///     .build()?;
/// let server = sigserver::Server::bind(cfg).await?;
/// println!("{:?}", server.local_addrs());
/// server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub struct Server {
    config: Config,
    /// Per listen address: the bound address and one socket per worker.
    listeners: Vec<(SocketAddr, Vec<std::net::TcpListener>)>,
    /// Admin listeners (operations endpoints only), served by worker 0.
    admin: Vec<(SocketAddr, std::net::TcpListener)>,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    dns: Option<crate::dns::DnsSockets>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("local_addrs", &self.local_addrs())
            .field("tls", &self.tls.is_some())
            .field("dns_addrs", &self.local_dns_addrs())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the mirror directory, loads TLS material and binds every listen address.
    /// Must be called within a Tokio runtime.
    pub async fn bind(config: Config) -> Result<Server, Error> {
        match std::fs::metadata(&config.dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Dir {
                    path: config.dir.clone(),
                    reason: "not a directory".into(),
                });
            }
            Err(e) => {
                return Err(Error::Dir {
                    path: config.dir.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let tls = match &config.tls {
            Some((cert, key)) => Some(load_tls(cert, key, config.http2)?),
            None => None,
        };
        let mut listeners = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let bind_err = |source| Error::Bind { addr, source };
            let first = listen(addr).map_err(bind_err)?;
            let local = first.local_addr().map_err(bind_err)?;
            let first = first.into_std().map_err(bind_err)?;
            // Every worker polls the same listening socket (a duplicated descriptor) from
            // its own event loop; whoever is free accepts. No SO_REUSEPORT: a second
            // instance started by mistake must fail to bind, not silently share the port.
            let mut socks = Vec::with_capacity(config.workers);
            for _ in 1..config.workers {
                socks.push(first.try_clone().map_err(bind_err)?);
            }
            socks.push(first);
            listeners.push((local, socks));
        }
        let mut admin = Vec::with_capacity(config.admin_listen.len());
        for &addr in &config.admin_listen {
            let bind_err = |source| Error::Bind { addr, source };
            let l = listen(addr).map_err(bind_err)?;
            let local = l.local_addr().map_err(bind_err)?;
            admin.push((local, l.into_std().map_err(bind_err)?));
        }
        let dns = match &config.dns {
            Some(d) => Some(crate::dns::DnsSockets::bind(d.clone())?),
            None => None,
        };
        let state = Arc::new(State::new(&config));
        Ok(Server {
            config,
            listeners,
            admin,
            tls,
            state,
            dns,
        })
    }

    /// A handle that applies a reloaded configuration to this server while it runs
    /// (see [`Reloader`](crate::Reloader)).
    pub fn reloader(&self) -> crate::Reloader {
        crate::Reloader::new(self.state.clone(), self.config.clone())
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(a, _)| *a).collect()
    }

    /// The bound admin listener addresses (see [`crate::ConfigBuilder::admin_listen`]).
    pub fn local_admin_addrs(&self) -> Vec<SocketAddr> {
        self.admin.iter().map(|(a, _)| *a).collect()
    }

    /// The DNS addresses bound (UDP and TCP on each; port 0 resolved); empty without
    /// DNS.
    pub fn local_dns_addrs(&self) -> Vec<SocketAddr> {
        self.dns
            .as_ref()
            .map(crate::dns::DnsSockets::local_addrs)
            .unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish (idle keep-alive connections are closed at once) and returns when every
    /// connection is closed or the shutdown timeout has passed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let cfg = &self.config;
        let (tx, rx) = watch::channel(false);
        let max = cfg.max_connections;
        let sem = Arc::new(Semaphore::new(max));
        let mut h2 = H2Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(128);
        let h1 = h1::Params {
            max_head: cfg.max_header_bytes,
            header_timeout: cfg.header_timeout,
            idle_timeout: cfg.idle_timeout,
            // Plain TCP with HTTP/2 on: the prior-knowledge preface; on TLS HTTP/2 is
            // chosen by ALPN (offered only with HTTP/2 on, see `load_tls`).
            h2c: cfg.http2 && self.tls.is_none(),
            sendfile: cfg.sendfile,
            chunk: cfg.chunk_bytes,
            admin: false,
        };
        // Admin listeners: plain HTTP/1.1, operations endpoints only.
        let admin_conn = Arc::new(ConnParams {
            h1: h1::Params {
                h2c: false,
                admin: true,
                ..h1.clone()
            },
            h2: h2.clone(),
            tls: None,
            state: self.state.clone(),
            idle: cfg.idle_timeout,
            handshake: cfg.header_timeout,
        });
        let conn = Arc::new(ConnParams {
            h1,
            h2,
            tls: self.tls.clone(),
            state: self.state.clone(),
            idle: cfg.idle_timeout,
            handshake: cfg.header_timeout,
        });
        // Worker w gets socket w of every address.
        let workers = cfg.workers;
        let mut per_worker: Vec<Vec<(std::net::TcpListener, Arc<ConnParams>)>> =
            (0..workers).map(|_| Vec::new()).collect();
        for (addr, socks) in self.listeners {
            tracing::info!(%addr, tls = conn.tls.is_some(), workers, "listening on {addr}");
            for (w, sock) in socks.into_iter().enumerate() {
                per_worker[w].push((sock, conn.clone()));
            }
        }
        for (addr, sock) in self.admin {
            tracing::info!(%addr, "admin listener on {addr}");
            per_worker[0].push((sock, admin_conn.clone()));
        }
        let (exit_tx, exit_rx) = watch::channel(false);
        let mut threads = Vec::with_capacity(workers);
        for (w, socks) in per_worker.into_iter().enumerate() {
            let (sem, rx, exit_rx) = (sem.clone(), rx.clone(), exit_rx.clone());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name(format!("sigserver-w{w}"))
                .spawn(move || {
                    worker(w, socks, sem, rx, exit_rx);
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(_) => threads.push(done_rx),
                Err(e) => tracing::error!(worker = w, error = %e, "cannot start worker thread"),
            }
        }
        // DNS: its own thread and event loop, stopped with the listeners.
        let dns_done = self.dns.and_then(|socks| {
            let (state, stop) = (self.state.clone(), rx.clone());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name("sigserver-dns".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(crate::dns::serve(socks, state, stop)),
                        Err(e) => tracing::error!(error = %e, "cannot start the DNS runtime"),
                    }
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(_) => Some(done_rx),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the DNS thread");
                    None
                }
            }
        });
        shutdown.await;
        tracing::info!(
            open_connections = self.state.metrics.open_connections(),
            "shutting down: no new connections, finishing in-flight requests"
        );
        let _ = tx.send(true);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        match tokio::time::timeout(cfg.shutdown_timeout, sem.acquire_many(all)).await {
            Ok(_) => tracing::info!("all connections closed"),
            Err(_) => tracing::warn!(
                open_connections = self.state.metrics.open_connections(),
                "shutdown timeout passed; dropping remaining connections"
            ),
        }
        let _ = exit_tx.send(true);
        for done in threads {
            let _ = done.await;
        }
        if let Some(done) = dns_done {
            let _ = done.await;
        }
        Ok(())
    }
}

/// One worker thread: a single-threaded runtime accepting on its own sockets and
/// serving its connections, until told to exit (after the graceful shutdown).
fn worker(
    w: usize,
    socks: Vec<(std::net::TcpListener, Arc<ConnParams>)>,
    sem: Arc<Semaphore>,
    mut rx: watch::Receiver<bool>,
    mut exit_rx: watch::Receiver<bool>,
) {
    crate::cache::set_worker_index(w);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker runtime");
            return;
        }
    };
    rt.block_on(async move {
        // A worker-local copy of the shutdown signal: every connection waits on it, and
        // a channel shared by all workers would put a cross-thread lock on the path of
        // every connection wake-up.
        let (local_tx, local_rx) = watch::channel(*rx.borrow_and_update());
        tokio::spawn(async move {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
            let _ = local_tx.send(true);
            // Keep the sender alive while connections may still look at it.
            local_tx.closed().await;
        });
        let rx = local_rx;
        let mut accepts = JoinSet::new();
        for (s, conn) in socks {
            match TcpListener::from_std(s) {
                Ok(l) => {
                    accepts.spawn(accept_loop(l, conn.clone(), sem.clone(), rx.clone()));
                }
                Err(e) => tracing::error!(error = %e, "cannot register a listening socket"),
            }
        }
        while accepts.join_next().await.is_some() {}
        // Keep serving the connections of this worker until the server is done.
        while !*exit_rx.borrow_and_update() {
            if exit_rx.changed().await.is_err() {
                break;
            }
        }
    });
}

struct ConnParams {
    h1: h1::Params,
    h2: H2Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    idle: Duration,
    handshake: Duration,
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(BACKLOG)
}

async fn accept_loop(
    listener: TcpListener,
    conn: Arc<ConnParams>,
    sem: Arc<Semaphore>,
    mut rx: watch::Receiver<bool>,
) {
    while let Some((stream, peer, permit)) = accept_bounded(&listener, &sem, &mut rx, "http").await
    {
        let _ = stream.set_nodelay(true);
        let conn = conn.clone();
        let rx = rx.clone();
        tokio::spawn(async move {
            conn.state.metrics.connection_opened();
            serve_connection(&conn, stream, peer, rx).await;
            conn.state.metrics.connection_closed();
            drop(permit);
        });
    }
}

/// The next accepted connection with the slot it holds (one of `slots`); `None` once
/// `stop` is raised or the slots are closed. Accept errors (EMFILE, ENFILE,
/// ECONNABORTED...) are logged with the `listener` they happened on and retried after a
/// short pause, so the server keeps serving. Used by the HTTP and the DNS-over-TCP
/// listeners.
pub(crate) async fn accept_bounded(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
    what: &'static str,
) -> Option<(TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    loop {
        if *stop.borrow() {
            return None;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.ok()?,
            _ = stop.changed() => return None,
        };
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => return Some((stream, peer, permit)),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return None,
        }
    }
}

async fn serve_connection(
    conn: &ConnParams,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut rx: watch::Receiver<bool>,
) {
    if *rx.borrow_and_update() {
        return;
    }
    let Some(acceptor) = &conn.tls else {
        if let h1::End::Http2(read) = serve_h1(conn, &mut stream, peer, &mut rx).await {
            let io = IdleTimeout::new(Rewind::new(read, stream), conn.idle);
            http2::serve(&conn.h2, io, conn.state.clone(), peer, rx).await;
        }
        return;
    };
    let mut tls = match tokio::time::timeout(
        conn.handshake,
        acceptor.accept(IdleTimeout::new(stream, conn.idle)),
    )
    .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    // ALPN `h2` is offered only when HTTP/2 is on (`load_tls`).
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        http2::serve(&conn.h2, tls, conn.state.clone(), peer, rx).await;
    } else {
        serve_h1(conn, &mut tls, peer, &mut rx).await;
    }
}

/// The HTTP/1 loop on `io`, stopped by the server's shutdown signal.
async fn serve_h1<S: h1::Transport>(
    conn: &ConnParams,
    io: &mut S,
    peer: SocketAddr,
    rx: &mut watch::Receiver<bool>,
) -> h1::End {
    let stop = async {
        let _ = rx.changed().await;
    };
    tokio::pin!(stop);
    h1::serve(io, &conn.state, peer, &conn.h1, stop).await
}

fn load_tls(cert: &Path, key: &Path, http2: bool) -> Result<TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_err = |reason: String| Error::Tls {
        what: "certificate",
        path: cert.to_path_buf(),
        reason,
    };
    let key_err = |reason: String| Error::Tls {
        what: "key",
        path: key.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate found".into()));
    }
    let pk = PrivateKeyDer::from_pem_file(key).map_err(|e| key_err(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, pk)
        .map_err(|e| {
            key_err(format!(
                "does not match the certificate or is unusable: {e}"
            ))
        })?;
    sc.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(sc)))
}
