//! The push settings of a syncing process ([`PushArgs`], taken by `sigupdate watch`
//! and `sigserver`) and their one resolution ([`resolve_push`]) into
//! `push::PushSettings`.

use std::net::SocketAddr;
use std::path::PathBuf;

use push::PushSettings;

use crate::{ConfigError, Layers};

/// Push options: who may notify this mirror, whom it notifies, and its name.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PushArgs {
    /// This mirror's name in the notices it sends and in its trace (default: the host
    /// name).
    #[arg(long, value_name = "NAME")]
    pub mirror_name: Option<String>,
    /// This mirror's public base URL, put in its notices: a downstream that has it as
    /// an upstream fetches from it first.
    #[arg(long, value_name = "URL")]
    pub push_url: Option<String>,
    /// An upstream allowed to notify this mirror, with the file holding the secret it
    /// signs with (at least 16 bytes); repeatable (environment: comma-separated). The
    /// same NAME twice (at most 4 times) accepts either key: a rotation without a gap.
    #[arg(long, value_name = "NAME=FILE", value_delimiter = ',')]
    pub push_sender: Vec<String>,
    /// Address of a separate listener for `POST /push` (sigupdate watch: needed to
    /// receive notices; sigserver: default is its own listener).
    #[arg(long, value_name = "ADDR")]
    pub push_listen: Option<SocketAddr>,
    /// A downstream's push URL (`http://HOST:PORT/push`), notified after every publish,
    /// with the file of the secret of this pair (`URL=FILE`; without one: --push-key);
    /// repeatable (environment: comma-separated).
    #[arg(long, value_name = "URL[=FILE]", value_delimiter = ',')]
    pub push_downstream: Vec<String>,
    /// File with the secret notices are signed with, for downstreams given without a
    /// file of their own.
    #[arg(long, value_name = "FILE")]
    pub push_key: Option<PathBuf>,
    /// Notices signed further than this from this clock are refused [default: 300].
    #[arg(long, value_name = "SECS")]
    pub push_window_secs: Option<u64>,
    /// Top tier: check the version TXT record every SECS seconds (one DNS query) and
    /// sync as soon as a version changes; 0 turns it off [default: 0].
    #[arg(long, value_name = "SECS")]
    pub dns_watch_secs: Option<u64>,
}

/// The host name, as the default mirror name (`mirror` when unknown or unusable).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| push::notice::valid_name(s))
        .unwrap_or_else(|| mirror_core::DEFAULT_MIRROR_NAME.to_owned())
}

/// Resolves the [`PushArgs`] settings through `layers`; notices go out with `http`,
/// the mirror's HTTP settings ([`crate::resolve_mirror`]'s `http`).
pub fn resolve_push(
    layers: &mut Layers<'_>,
    http: &fetch::HttpSettings,
) -> Result<PushSettings, ConfigError> {
    let d = PushSettings::new(&host_name());
    let senders: Vec<String> = layers.list("push_sender", Vec::new())?;
    let mut parsed = Vec::new();
    for s in senders.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        parsed.push(PushSettings::parse_sender(s)?);
    }
    let s = PushSettings {
        name: layers.value("mirror_name", d.name.clone())?,
        url: layers.optional("push_url")?,
        senders: parsed,
        listen: layers.optional("push_listen")?,
        downstreams: layers
            .list("push_downstream", Vec::<String>::new())?
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(PushSettings::parse_downstream)
            .collect::<Result<_, _>>()?,
        key: layers.optional("push_key")?,
        window_secs: layers.value("push_window_secs", d.window_secs)?,
        dns_watch_secs: layers.value("dns_watch_secs", d.dns_watch_secs)?,
        http: http.clone(),
    };
    Ok(s.validated()?)
}
