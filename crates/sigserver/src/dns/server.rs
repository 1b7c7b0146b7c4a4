//! The UDP and TCP loops around the packet handler, on one thread of their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::answer::{Outcome, Reply, Transport, respond};
use super::snapshot::PublishedSource;
use super::{DnsConfig, MAX_TCP_CONNECTIONS, MAX_TCP_QUERIES, TCP_IDLE_TIMEOUT};
use crate::error::Error;
use crate::metrics::Metrics;
use rate_limit::{ClientKey, RateLimiter};

/// Largest query read over UDP; a larger datagram is dropped.
const MAX_UDP_QUERY: usize = 4096;
/// Attempts to find a port free for both UDP and TCP when port 0 is asked for.
const PORT_ATTEMPTS: usize = 16;

/// The bound DNS sockets, one UDP and one TCP per listen address (same port).
#[derive(Debug)]
pub(crate) struct DnsSockets {
    config: DnsConfig,
    socks: Vec<(std::net::UdpSocket, std::net::TcpListener)>,
}

impl DnsSockets {
    /// Binds every listen address over UDP and TCP.
    pub(crate) fn bind(config: DnsConfig) -> Result<DnsSockets, Error> {
        let mut socks = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            socks.push(bind_pair(addr)?);
        }
        Ok(DnsSockets { config, socks })
    }

    /// The bound addresses (port 0 resolved).
    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
        self.socks
            .iter()
            .filter_map(|(u, _)| u.local_addr().ok())
            .collect()
    }
}

fn bind_pair(addr: SocketAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener), Error> {
    let bind_err = |source| Error::Bind { addr, source };
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
        let local = udp.local_addr().map_err(bind_err)?;
        match std::net::TcpListener::bind(local) {
            Ok(tcp) => {
                udp.set_nonblocking(true).map_err(bind_err)?;
                tcp.set_nonblocking(true).map_err(bind_err)?;
                return Ok((udp, tcp));
            }
            // A port chosen by the kernel for UDP may be taken for TCP: try another.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(bind_err(e)),
        }
    }
    Err(bind_err(last.unwrap_or_else(|| {
        std::io::Error::other("no port free for both UDP and TCP")
    })))
}

struct Ctx {
    config: DnsConfig,
    source: PublishedSource,
    state: Arc<crate::serve::State>,
    rate: Option<RateLimiter>,
    slip: AtomicU64,
    tcp_slots: Arc<Semaphore>,
}

impl Ctx {
    fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    fn answer(&self, packet: &[u8], transport: Transport, limited: bool) -> Reply {
        respond(
            packet,
            &self.config.zones,
            transport,
            SystemTime::now(),
            limited,
            || crate::behind::dns_published(&self.state, self.source.get()),
        )
    }
}

/// Serves DNS on `sockets` until `stop` turns true. Runs on the caller's runtime.
pub(crate) async fn serve(
    sockets: DnsSockets,
    state: Arc<crate::serve::State>,
    stop: watch::Receiver<bool>,
) {
    let ctx = Arc::new(Ctx {
        rate: sockets.config.rate.map(|(r, b)| RateLimiter::new(r, b)),
        source: PublishedSource::new(&state.dir),
        config: sockets.config,
        state,
        slip: AtomicU64::new(0),
        tcp_slots: Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS)),
    });
    let mut tasks = JoinSet::new();
    for (udp, tcp) in sockets.socks {
        match (UdpSocket::from_std(udp), TcpListener::from_std(tcp)) {
            (Ok(udp), Ok(tcp)) => {
                if let Ok(a) = udp.local_addr() {
                    tracing::info!(%a, zone = %ctx.config.zones.main, "DNS: answering on udp+tcp {a}");
                }
                tasks.spawn(udp_loop(udp, ctx.clone(), stop.clone()));
                tasks.spawn(tcp_loop(tcp, ctx.clone(), stop.clone()));
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "DNS: cannot register a socket");
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn udp_loop(sock: UdpSocket, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; MAX_UDP_QUERY + 1];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. ICMP port unreachable reported on a later receive
                    tracing::debug!(error = %e, "DNS: UDP receive failed");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if n > MAX_UDP_QUERY {
            ctx.metrics().dns_query(Transport::Udp, Outcome::Dropped);
            continue;
        }
        let mut limited = false;
        if let Some(rl) = &ctx.rate
            && rl
                .check(ClientKey::from(peer.ip()), Instant::now())
                .is_err()
        {
            // Slip: every second query over the limit gets an empty TC=1 answer.
            if ctx.slip.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
                ctx.metrics()
                    .dns_query(Transport::Udp, Outcome::RateLimited);
                continue;
            }
            limited = true;
        }
        let reply = ctx.answer(&buf[..n], Transport::Udp, limited);
        ctx.metrics().dns_query(Transport::Udp, reply.outcome);
        if let Some(b) = reply.bytes
            && let Err(e) = sock.send_to(&b, peer).await
        {
            tracing::debug!(%peer, error = %e, "DNS: UDP send failed");
        }
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    while let Some((stream, peer, permit)) =
        crate::server::accept_bounded(&listener, &ctx.tcp_slots, &mut stop, "dns").await
    {
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tcp_connection(stream, peer, &ctx, stop).await;
            drop(permit);
        });
    }
}

/// One DNS-over-TCP connection: length-prefixed queries, answered in order, until the
/// client closes, stays idle for [`TCP_IDLE_TIMEOUT`], sends something we drop, or
/// reaches [`MAX_TCP_QUERIES`].
async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &Ctx,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    for _ in 0..MAX_TCP_QUERIES {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            buf.resize(len, 0);
            stream.read_exact(&mut buf).await?;
            Ok::<usize, std::io::Error>(len)
        };
        let len = tokio::select! {
            r = tokio::time::timeout(TCP_IDLE_TIMEOUT, read) => match r {
                Ok(Ok(len)) => len,
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(%peer, "DNS: idle TCP connection closed");
                    return;
                }
            },
            _ = stop.changed() => return,
        };
        let reply = ctx.answer(&buf[..len], Transport::Tcp, false);
        ctx.metrics().dns_query(Transport::Tcp, reply.outcome);
        let Some(b) = reply.bytes else { return };
        let Ok(n) = u16::try_from(b.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(b.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&b);
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(&out)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
