//! The DNS TXT lookup, through `hickory-resolver` on a private current-thread tokio
//! runtime (the public API stays blocking).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Name, ResolveError, Resolver};

use crate::{DEFAULT_NAME, Error, VersionRecord};

/// The most TXT records considered in one answer.
const MAX_TXT_RECORDS: usize = 16;

/// Where and how to look the version record up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The TXT record's name (default [`DEFAULT_NAME`]).
    pub name: String,
    /// Name servers to ask (UDP, with TCP fallback for truncated answers). Empty means
    /// the system configuration (`/etc/resolv.conf`); explicit servers work even when
    /// that is empty or missing.
    pub nameservers: Vec<SocketAddr>,
    /// Timeout of one query attempt (default 5 s).
    pub timeout: Duration,
    /// Attempts per name server (default 2).
    pub attempts: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            name: DEFAULT_NAME.to_string(),
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl DnsConfig {
    /// The default configuration with these name servers.
    pub fn with_nameservers(nameservers: Vec<SocketAddr>) -> DnsConfig {
        DnsConfig {
            nameservers,
            ..DnsConfig::default()
        }
    }
}

fn map_err(name: &str, cfg: &DnsConfig, e: &ResolveError) -> Error {
    if e.is_nx_domain() {
        return Error::NotFound {
            name: name.to_string(),
            reason: "NXDOMAIN".into(),
        };
    }
    if e.is_no_records_found() {
        return Error::NotFound {
            name: name.to_string(),
            reason: "no TXT records".into(),
        };
    }
    if e.proto()
        .is_some_and(|p| matches!(p.kind(), ProtoErrorKind::Timeout))
    {
        return Error::Timeout {
            name: name.to_string(),
            timeout: cfg.timeout,
        };
    }
    Error::Dns {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

/// Looks up the TXT strings at `cfg.name` (each record's character-strings joined).
///
/// # Errors
/// [`Error::NotFound`], [`Error::Timeout`], [`Error::Dns`].
pub(crate) fn lookup_txt(cfg: &DnsConfig) -> Result<Vec<String>, Error> {
    let name = cfg.name.as_str();
    let dns_err = |reason: String| Error::Dns {
        name: name.to_string(),
        reason,
    };
    // Absolute name: no search domains appended.
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_ascii(&fqdn).map_err(|e| dns_err(format!("invalid name: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| dns_err(format!("cannot start the resolver runtime: {e}")))?;
    rt.block_on(async {
        let mut builder = if cfg.nameservers.is_empty() {
            let (sys, _) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                dns_err(format!(
                    "no usable system resolver configuration ({e}); configure name servers"
                ))
            })?;
            if sys.name_servers().is_empty() {
                return Err(dns_err(
                    "the system resolver configuration lists no name servers; configure name servers"
                        .into(),
                ));
            }
            Resolver::builder_with_config(sys, TokioConnectionProvider::default())
        } else {
            let mut rc = ResolverConfig::new();
            for ns in &cfg.nameservers {
                rc.add_name_server(NameServerConfig::new(*ns, Protocol::Udp));
                rc.add_name_server(NameServerConfig::new(*ns, Protocol::Tcp));
            }
            Resolver::builder_with_config(rc, TokioConnectionProvider::default())
        };
        let opts = builder.options_mut();
        opts.timeout = cfg.timeout;
        opts.attempts = cfg.attempts.max(1);
        opts.use_hosts_file = ResolveHosts::Never;
        opts.cache_size = 0;
        opts.edns0 = true;
        let resolver = builder.build();
        let overall = cfg
            .timeout
            .saturating_mul(u32::try_from(cfg.attempts.max(1)).unwrap_or(u32::MAX))
            .saturating_mul(u32::try_from(cfg.nameservers.len().max(1) * 2).unwrap_or(u32::MAX))
            .saturating_add(Duration::from_secs(1));
        let answer = tokio::time::timeout(overall, resolver.txt_lookup(qname))
            .await
            .map_err(|_| Error::Timeout {
                name: name.to_string(),
                timeout: cfg.timeout,
            })?
            .map_err(|e| map_err(name, cfg, &e))?;
        let mut out = Vec::new();
        for txt in answer.iter().take(MAX_TXT_RECORDS) {
            let mut s = Vec::new();
            for part in txt.txt_data() {
                s.extend_from_slice(part);
            }
            out.push(String::from_utf8_lossy(&s).into_owned());
        }
        if out.is_empty() {
            return Err(Error::NotFound {
                name: name.to_string(),
                reason: "no TXT records".into(),
            });
        }
        Ok(out)
    })
}

/// Looks up and parses the version record. When several TXT records exist, the first
/// one that parses wins; when none does, the first one's parse error is returned.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Timeout`], [`Error::Dns`] for the query;
/// [`Error::Field`] / [`Error::Record`] for a malformed
/// record. Staleness is not an error: check [`VersionRecord::is_stale`].
pub fn lookup(cfg: &DnsConfig) -> Result<VersionRecord, Error> {
    let txts = lookup_txt(cfg)?;
    let mut first_err = None;
    for t in &txts {
        match VersionRecord::parse(t) {
            Ok(r) => return Ok(r),
            Err(e) => {
                tracing::warn!(name = %cfg.name, record = %t, error = %e, "malformed version record");
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::NotFound {
        name: cfg.name.clone(),
        reason: "no TXT records".into(),
    }))
}
