//! The version record over DNS: `sigserver` as the authoritative name server of the
//! name freshclam reads (`DNSDatabaseInfo`), announcing the versions of the
//! **published** snapshot only.
//!
//! * **What is answered** (module `answer`, a pure function from query bytes to
//!   answer bytes, shared by UDP, TCP, the tests and the fuzz target):
//!   - the zone `--dns-zone NAME` (e.g. `current.cvd.mirror.example`): `TXT` at the
//!     apex is the version record in the format of `current.cvd.clamav.net`
//!     ([`dns_versions::VersionRecord`], one grammar with `dns.txt`): main, daily,
//!     bytecode, safebrowsing by position, custom databases as `name=version`
//!     extensions (ignored by freshclam, read by our own mirrors), and the **time of
//!     the answer** as record time, so the client's 12-hour staleness check passes
//!     while the mirror is up. `SOA` and `NS` at the apex; `NXDOMAIN` below it.
//!   - with `--dns-extra-zone clamav.net`, the zone `cvd.clamav.net`:
//!     `<db>.cvd.clamav.net` `TXT` is `version:time`
//!     ([`dns_versions::DatabaseRecord`]), which libfreshclam queries for every
//!     database other than main/daily/safebrowsing/bytecode (that domain is
//!     hard-coded in the client), for split-horizon set-ups whose resolver sends
//!     `cvd.clamav.net` to us; `current.cvd.clamav.net` is the main record (the
//!     client's default `DNSDatabaseInfo`); `NXDOMAIN` for a database not held.
//!   - every other name: `REFUSED`. No recursion ever (`RA=0`); `AA=1` in our zones.
//!     Opcodes other than QUERY: `NOTIMP`; malformed queries: `FORMERR` (header only),
//!     too short or `QR=1` packets: dropped. EDNS is understood (version 0, answers
//!     up to [`MAX_UDP_EDNS`] bytes over UDP; other versions get `BADVERS`); a UDP
//!     answer larger than the client's limit goes out with `TC=1` and no records, so
//!     the client retries over TCP.
//! * **Consistency** (module `snapshot`): each query reads the `current` symlink and
//!   uses the versions of that generation (the `<db>.cvd` headers, read once per
//!   generation and cached by its number). The record switches in the same step as
//!   the files served over HTTP, so a client never learns a version before the mirror
//!   serves it. The headers, not the snapshot's `dns.txt`, are the source: they are
//!   what an HTTP header probe of the same snapshot returns, even in a plain
//!   directory whose `dns.txt` was written by hand.
//! * **TTL** ([`DEFAULT_TTL`], 60 s): freshclam caches nothing itself; resolvers
//!   cache for the TTL, so it bounds how long a client may see the previous snapshot
//!   after a switch (harmless: the previous version's cdiffs stay published). It
//!   matches the `max-age=60` of the mutable files over HTTP. The SOA minimum (the
//!   negative-caching time) is the same TTL.
//! * **Abuse**: answers are small (about 100 bytes for 40-byte queries). UDP is rate
//!   limited per source (/32 for IPv4, /64 for IPv6; [`DEFAULT_RATE`] queries per
//!   second, bursts of [`DEFAULT_BURST`]; a resolver caches each name for the TTL, so
//!   honest sources stay far below): beyond the limit every second query gets an empty
//!   `TC=1` answer ("slip", so a real client behind that address retries over TCP)
//!   and the others are dropped. TCP (length-prefixed, RFC 7766) needs a handshake, so
//!   it cannot be spoofed; it is bounded by [`MAX_TCP_CONNECTIONS`], an idle timeout
//!   ([`TCP_IDLE_TIMEOUT`]) and [`MAX_TCP_QUERIES`] per connection. Every query is
//!   counted by transport and outcome in `sigserver_dns_queries_total`.
//! * **Wire format**: `hickory-proto` (already in the tree through
//!   `hickory-resolver`), no hand-written DNS encoding. hickory-server's `Authority`
//!   model would need a zone of records rebuilt on every switch and does not express
//!   the per-query record time; a 300-line handler over hickory-proto does.

pub(crate) mod answer;
mod server;
mod snapshot;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::Name;

pub use answer::{MAX_UDP_EDNS, MAX_UDP_PLAIN, Outcome, Transport};
pub(crate) use server::{DnsSockets, serve};

use crate::error::Error;

/// Default TTL of every record.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default UDP queries per second per source (/32 or /64).
pub const DEFAULT_RATE: f64 = 20.0;
/// Default burst of the UDP rate limit.
pub const DEFAULT_BURST: u32 = 40;
/// Most simultaneous DNS-over-TCP connections.
pub const MAX_TCP_CONNECTIONS: usize = 256;
/// A DNS-over-TCP connection idle this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most queries answered on one TCP connection.
pub const MAX_TCP_QUERIES: usize = 100;
/// Longest accepted TTL (one day).
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// A validated DNS configuration, built with [`DnsConfig::builder`].
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) zones: answer::Zones,
    pub(crate) rate: Option<(f64, u32)>,
}

impl DnsConfig {
    /// Starts a configuration answering for `zone`, the main record's name (e.g.
    /// `current.cvd.mirror.example`).
    ///
    /// ```
    /// let dns = sigserver::dns::DnsConfig::builder("current.cvd.mirror.example")
    ///     .listen(["127.0.0.1:5353".parse().unwrap()])
    ///     .extra_zone("clamav.net")
    ///     .ttl(std::time::Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(dns.listen_addrs().len(), 1);
    /// ```
    pub fn builder(zone: impl Into<String>) -> DnsConfigBuilder {
        DnsConfigBuilder {
            zone: zone.into(),
            listen: Vec::new(),
            extra: None,
            ns: None,
            ttl: DEFAULT_TTL,
            rate: Some((DEFAULT_RATE, DEFAULT_BURST)),
        }
    }

    /// The configured listen addresses (each for UDP and TCP).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.listen
    }
}

/// Builds a [`DnsConfig`].
#[derive(Debug, Clone)]
pub struct DnsConfigBuilder {
    zone: String,
    listen: Vec<SocketAddr>,
    extra: Option<String>,
    ns: Option<String>,
    ttl: Duration,
    rate: Option<(f64, u32)>,
}

impl DnsConfigBuilder {
    /// Addresses to answer on, each over UDP and TCP (at least one). With port 0 the
    /// UDP and TCP sockets get the same port.
    pub fn listen(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.listen = addrs.into_iter().collect();
        self
    }

    /// Also answer `<db>.cvd.<domain>` and `current.cvd.<domain>` (authoritative for
    /// `cvd.<domain>`); `domain` is `clamav.net` for freshclam's hard-coded names.
    pub fn extra_zone(mut self, domain: impl Into<String>) -> Self {
        self.extra = Some(domain.into());
        self
    }

    /// The name server name in NS and SOA: the name the parent zone delegates to
    /// (default: the zone name itself).
    pub fn nameserver(mut self, name: impl Into<String>) -> Self {
        self.ns = Some(name.into());
        self
    }

    /// TTL of every record, 1 s..=[`MAX_TTL`] (default [`DEFAULT_TTL`]).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// UDP rate limit per source: `per_second` queries with bursts of `burst`
    /// (default [`DEFAULT_RATE`], [`DEFAULT_BURST`]); `None` turns it off.
    pub fn rate_limit(mut self, limit: Option<(f64, u32)>) -> Self {
        self.rate = limit;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<DnsConfig, Error> {
        let bad = |field, reason: String| Error::Config { field, reason };
        if self.listen.is_empty() {
            return Err(bad("dns_listen", "at least one address is required".into()));
        }
        if self.listen.len() > crate::config::MAX_LISTEN {
            return Err(bad("dns_listen", "too many addresses".into()));
        }
        let main = zone_name(&self.zone).map_err(|r| bad("dns_zone", r))?;
        let extra = match &self.extra {
            Some(d) => {
                let d = zone_name(d).map_err(|r| bad("dns_extra_zone", r))?;
                let cvd = d
                    .prepend_label("cvd")
                    .map_err(|e| bad("dns_extra_zone", e.to_string()))?;
                if main.zone_of_case(&cvd) {
                    return Err(bad(
                        "dns_extra_zone",
                        format!("cvd.{d} lies inside --dns-zone {main}"),
                    ));
                }
                Some(cvd)
            }
            None => None,
        };
        let ns = match &self.ns {
            Some(n) => zone_name(n).map_err(|r| bad("dns_ns", r))?,
            None => main.clone(),
        };
        if self.ttl < Duration::from_secs(1) || self.ttl > MAX_TTL {
            return Err(bad("dns_ttl", "must be 1..=86400 seconds".into()));
        }
        if let Some((rate, burst)) = self.rate
            && (!(rate.is_finite() && rate > 0.0) || burst == 0)
        {
            return Err(bad(
                "dns_rate_limit",
                "rate must be > 0 and burst >= 1".into(),
            ));
        }
        Ok(DnsConfig {
            listen: self.listen,
            zones: answer::Zones {
                main,
                extra,
                ns,
                ttl: self.ttl.as_secs() as u32,
            },
            rate: self.rate,
        })
    }
}

/// A domain name from configuration: absolute, lower case, at least two labels.
fn zone_name(text: &str) -> Result<Name, String> {
    let t = text.trim().trim_end_matches('.');
    let mut n = Name::from_ascii(t).map_err(|e| format!("{t:?}: {e}"))?;
    n.set_fqdn(true);
    if n.iter().count() < 2 {
        return Err(format!("{t:?}: need at least two labels"));
    }
    if n.iter().any(|l| l == b"*") {
        return Err(format!("{t:?}: no wildcards"));
    }
    Ok(n.to_lowercase())
}

/// The DNS settings as the binary resolves them (flags, `SIGSERVER_DNS_*`, file keys
/// `dns_listen`, `dns_zone`, ...), before they are checked into a [`DnsConfig`].
///
/// ```
/// let dns = sigserver::dns::DnsSettings {
///     listen: Some(vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()]),
///     zone: Some("current.cvd.mirror.example".into()),
///     extra_zone: Some("clamav.net".into()),
///     ttl: Some(60),
///     ..Default::default()
/// };
/// let dns = dns.into_config().unwrap().unwrap();
/// assert_eq!(dns.listen_addrs().len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsSettings {
    /// Addresses to answer on (UDP and TCP); none: no DNS server.
    pub listen: Option<Vec<SocketAddr>>,
    /// The main record's name; see [`DnsConfig::builder`].
    pub zone: Option<String>,
    /// See [`DnsConfigBuilder::extra_zone`].
    pub extra_zone: Option<String>,
    /// See [`DnsConfigBuilder::nameserver`].
    pub ns: Option<String>,
    /// Seconds; see [`DnsConfigBuilder::ttl`].
    pub ttl: Option<u64>,
    /// UDP queries per second per source; `0` turns the limit off.
    pub rate_limit: Option<f64>,
    /// Burst of `rate_limit` (default: twice the rate, at least 1).
    pub rate_burst: Option<u32>,
}

impl DnsSettings {
    /// The configuration these settings describe: `None` when no listen address is
    /// set (DNS off).
    ///
    /// # Errors
    /// [`Error::Config`] for a listen address without a zone, or an invalid value.
    pub fn into_config(self) -> Result<Option<DnsConfig>, Error> {
        let Some(listen) = self.listen.filter(|l| !l.is_empty()) else {
            return Ok(None);
        };
        let zone = self.zone.ok_or_else(|| Error::Config {
            field: "dns_zone",
            reason: "--dns-listen needs --dns-zone (the record's name)".into(),
        })?;
        let mut b = DnsConfig::builder(zone).listen(listen);
        if let Some(d) = self.extra_zone {
            b = b.extra_zone(d);
        }
        if let Some(n) = self.ns {
            b = b.nameserver(n);
        }
        if let Some(t) = self.ttl {
            b = b.ttl(Duration::from_secs(t));
        }
        match self.rate_limit {
            Some(0.0) => b = b.rate_limit(None),
            Some(r) => {
                let burst = self
                    .rate_burst
                    .unwrap_or_else(|| ((r * 2.0).ceil() as u32).max(1));
                b = b.rate_limit(Some((r, burst)));
            }
            None => {
                if let Some(burst) = self.rate_burst {
                    b = b.rate_limit(Some((DEFAULT_RATE, burst)));
                }
            }
        }
        b.build().map(Some)
    }
}

/// Entry points for the fuzz target and tests (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, UNIX_EPOCH};

    use hickory_proto::op::{Message, MessageType};

    use super::answer::{MAX_UDP_EDNS, Published, Transport, respond};

    /// Answers `data` as a query over both transports (the first byte also picks the
    /// rate-limit slip) and checks every answer: it decodes, is a response with the
    /// query's ID, never offers recursion, fits the UDP limit, and its records are
    /// for the name asked.
    pub fn dns_packet(data: &[u8]) {
        static CFG: OnceLock<super::DnsConfig> = OnceLock::new();
        let cfg = CFG.get_or_init(|| {
            super::DnsConfig::builder("current.cvd.mirror.test")
                .listen([std::net::SocketAddr::from(([127, 0, 0, 1], 0))])
                .extra_zone("clamav.net")
                .build()
                .expect("fuzz configuration")
        });
        let versions = BTreeMap::from([
            ("daily".to_owned(), 27_000),
            ("bytecode".to_owned(), 19),
            ("test".to_owned(), 6),
        ]);
        let p = Arc::new(Published::new(&versions, 7));
        let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let limited = data.first().is_some_and(|b| b & 0x80 != 0);
        for t in [Transport::Udp, Transport::Tcp] {
            let r = respond(data, &cfg.zones, t, now, limited, || Some(p.clone()));
            let Some(bytes) = r.bytes else { continue };
            let m = Message::from_vec(&bytes).expect("our answer decodes");
            assert_eq!(m.message_type(), MessageType::Response);
            assert_eq!(&bytes[..2], &data[..2], "answer ID");
            assert!(!m.recursion_available());
            if t == Transport::Udp {
                assert!(
                    bytes.len() <= usize::from(MAX_UDP_EDNS),
                    "UDP answer too big"
                );
            }
            if let Some(q) = m.queries().first() {
                for a in m.answers() {
                    assert!(
                        a.name().to_lowercase() == q.name().to_lowercase()
                            || a.name().zone_of(q.name()),
                        "answer for another name"
                    );
                }
            }
        }
    }
}
