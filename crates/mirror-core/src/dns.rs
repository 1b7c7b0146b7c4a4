//! Versions from the DNS TXT record (feature `dns`, on by default): [`SystemDns`], the
//! engine's [`DnsVersions`](crate::DnsVersions) over `dns-versions`' resolver
//! (hickory-resolver on a private tokio runtime). Without the feature the trait is the
//! seam: the crate then brings no DNS client, and its user passes its own lookup or
//! none (versions then come from the upstream's `dns.txt` or header probes).

use std::collections::BTreeMap;
use std::time::SystemTime;

use dns_versions::DEFAULT_MAX_AGE;

use crate::manifest::{ManifestError, versions_of};
use crate::settings::MirrorSettings;

/// DNS version records through `dns_versions` (the system resolver, or explicit name
/// servers). A record older than 12 hours is reported as unusable, so the engine falls
/// back to the manifest or header probe.
#[derive(Debug, Clone, Default)]
pub struct SystemDns {
    /// Name servers to ask; empty: the system configuration.
    pub nameservers: Vec<std::net::SocketAddr>,
}

impl crate::engine::DnsVersions for SystemDns {
    fn lookup(&mut self, name: &str) -> Result<BTreeMap<String, u32>, crate::error::BoxError> {
        let cfg = dns_versions::DnsConfig {
            name: name.to_owned(),
            nameservers: self.nameservers.clone(),
            ..dns_versions::DnsConfig::default()
        };
        let record = dns_versions::lookup(&cfg).map_err(ManifestError::Lookup)?;
        let now = SystemTime::now();
        if record.is_stale(now, DEFAULT_MAX_AGE) {
            return Err(Box::new(ManifestError::Stale {
                age_secs: record.age(now).as_secs(),
            }));
        }
        Ok(versions_of(&record))
    }
}

impl MirrorSettings {
    /// The DNS lookup the engine is handed: `None` when versions do not come from DNS.
    pub fn dns(&self) -> Option<SystemDns> {
        self.dns.then(|| SystemDns {
            nameservers: self.dns_servers.clone(),
        })
    }
}
