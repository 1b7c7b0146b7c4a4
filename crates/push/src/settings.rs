//! What an operator configures about push ([`PushSettings`]), and the hub built from it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mirror_core::SyncReport;
use mirror_core::layout::MirrorLayout;
use mirror_core::model::Snapshot;
use mirror_core::trace::TraceRecord;

use crate::auth::Secret;
use crate::cascade::{CascadeConfig, Downstream};
use crate::error::Error;
use crate::hub::{Outgoing, PushHub, SyncResult};
use crate::receiver::{MAX_KEYS_PER_SENDER, Receiver, ReceiverConfig};

/// Default replay window (seconds either way).
pub const DEFAULT_WINDOW_SECS: u64 = 300;

/// Push settings of one mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// This mirror's name: its sender name in notices and its name in traces.
    pub name: String,
    /// This mirror's public base URL, put in its notices.
    pub url: Option<String>,
    /// Upstreams allowed to notify: name and secret file. A name given more than once
    /// (up to [`MAX_KEYS_PER_SENDER`] times) has each of its keys accepted: a key
    /// rotation without a gap.
    pub senders: Vec<(String, PathBuf)>,
    /// A separate listener for `POST /push` (`sigupdate watch` needs one to receive).
    pub listen: Option<SocketAddr>,
    /// Where to send notices after a publish (`http(s)://HOST/push` URLs), each with
    /// the secret file of that pair, if it has one of its own.
    pub downstreams: Vec<(String, Option<PathBuf>)>,
    /// The secret notices are signed with for downstreams without one of their own.
    pub key: Option<PathBuf>,
    /// Replay window (seconds either way).
    pub window_secs: u64,
    /// Seconds between checks of the version TXT record (top tier; 0: off).
    pub dns_watch_secs: u64,
    /// Trusted CAs and proxy of the notices sent to downstreams (the mirror's own
    /// HTTP settings, `--ca-cert` / `--proxy`).
    pub http: fetch::HttpSettings,
}

impl PushSettings {
    /// No push: polling only, named `name`.
    pub fn new(name: &str) -> Self {
        PushSettings {
            name: name.to_owned(),
            url: None,
            senders: Vec::new(),
            listen: None,
            downstreams: Vec::new(),
            key: None,
            window_secs: DEFAULT_WINDOW_SECS,
            dns_watch_secs: 0,
            http: fetch::HttpSettings::default(),
        }
    }

    /// Parses a `NAME=SECRET_FILE` sender.
    pub fn parse_sender(s: &str) -> Result<(String, PathBuf), Error> {
        let (name, file) = s
            .split_once('=')
            .ok_or_else(|| Error::Settings(format!("sender {s:?}: NAME=SECRET_FILE expected")))?;
        if !crate::notice::valid_name(name.trim()) {
            return Err(Error::Settings(format!(
                "sender {name:?}: 1-64 letters, digits, '.', '-' or '_' expected"
            )));
        }
        Ok((name.trim().to_owned(), PathBuf::from(file.trim())))
    }

    /// Parses a `URL` or `URL=SECRET_FILE` downstream (a push URL has no `=`).
    pub fn parse_downstream(s: &str) -> Result<(String, Option<PathBuf>), Error> {
        Ok(match s.split_once('=') {
            Some((url, file)) if !file.trim().is_empty() => {
                (url.trim().to_owned(), Some(PathBuf::from(file.trim())))
            }
            Some(_) => {
                return Err(Error::Settings(format!(
                    "downstream {s:?}: URL or URL=SECRET_FILE expected"
                )));
            }
            None => (s.trim().to_owned(), None),
        })
    }

    /// Checks the settings without reading files.
    pub fn validated(self) -> Result<Self, Error> {
        if !crate::notice::valid_name(&self.name) {
            return Err(Error::Settings(format!(
                "push name {:?}: 1-64 letters, digits, '.', '-' or '_' expected",
                self.name
            )));
        }
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if let Some(u) = self.url.as_deref().filter(|u| !http(u)) {
            return Err(Error::Settings(format!(
                "push url {u:?}: not an http(s) URL"
            )));
        }
        if let Some((u, _)) = self.downstreams.iter().find(|(u, _)| !http(u)) {
            return Err(Error::Settings(format!(
                "push downstream {u:?}: not an http(s) URL"
            )));
        }
        if let Some((u, _)) = self
            .downstreams
            .iter()
            .find(|(_, k)| k.is_none() && self.key.is_none())
        {
            return Err(Error::Settings(format!(
                "push downstream {u:?} needs a secret: URL=SECRET_FILE, or push_key for all"
            )));
        }
        for (name, _) in &self.senders {
            let n = self.senders.iter().filter(|(m, _)| m == name).count();
            if n > MAX_KEYS_PER_SENDER {
                return Err(Error::Settings(format!(
                    "push sender {name:?}: {n} keys, at most {MAX_KEYS_PER_SENDER} at a time"
                )));
            }
        }
        if self.window_secs == 0 {
            return Err(Error::Settings(
                "push window must be at least 1 second".into(),
            ));
        }
        Ok(self)
    }

    /// Whether anything about push is configured.
    pub fn enabled(&self) -> bool {
        !self.senders.is_empty() || !self.downstreams.is_empty() || self.dns_watch_secs > 0
    }

    /// Builds the hub of the mirror in `dir` (reads the secret files and what is
    /// published now).
    pub fn hub(&self, dir: &Path) -> Result<Arc<PushHub>, Error> {
        let mut senders = Vec::with_capacity(self.senders.len());
        for (name, file) in &self.senders {
            senders.push((name.clone(), Secret::from_file(file)?));
        }
        let receiver = Receiver::new(
            senders,
            ReceiverConfig {
                window: Duration::from_secs(self.window_secs),
                ..ReceiverConfig::default()
            },
        );
        let cascade = if self.downstreams.is_empty() {
            None
        } else {
            let shared = self.key.as_deref().map(Secret::from_file).transpose()?;
            let mut downstreams = Vec::with_capacity(self.downstreams.len());
            for (url, own) in &self.downstreams {
                let secret = match (own, &shared) {
                    (Some(file), _) => Secret::from_file(file)?,
                    (None, Some(s)) => s.clone(),
                    (None, None) => {
                        return Err(Error::Settings(format!(
                            "push downstream {url:?} needs a secret"
                        )));
                    }
                };
                downstreams.push(Downstream {
                    url: url.clone(),
                    secret,
                });
            }
            Some((
                downstreams,
                CascadeConfig {
                    http: self.http.clone(),
                    ..CascadeConfig::default()
                },
            ))
        };
        Ok(PushHub::new(
            dir,
            receiver,
            Outgoing {
                name: self.name.clone(),
                url: self.url.clone(),
                cascade,
            },
            published_versions(dir),
        ))
    }
}

/// The versions the mirror in `dir` publishes now (empty when nothing is published or
/// the snapshot cannot be read).
pub fn published_versions(dir: &Path) -> BTreeMap<String, u32> {
    let layout = MirrorLayout::new(dir);
    let Ok(Some(g)) = layout.current_generation() else {
        return BTreeMap::new();
    };
    match Snapshot::read(&layout.generation(g)) {
        Ok(s) => s
            .databases
            .iter()
            .filter_map(|(n, d)| d.version.map(|v| (n.clone(), v)))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

impl SyncResult {
    /// What `report` did to the mirror in `dir`: the published versions, what
    /// upstream advertised, and the trace entries of new versions (from the published
    /// generation's trace record).
    pub fn from_report(dir: &Path, report: &SyncReport) -> SyncResult {
        let mut r = SyncResult::default();
        for d in &report.databases {
            if let Some(v) = d.after {
                r.published.insert(d.name.clone(), v);
            }
            if let Some(v) = d.upstream {
                r.upstream.insert(d.name.clone(), v);
            }
        }
        let layout = MirrorLayout::new(dir);
        let Ok(Some(g)) = layout.current_generation() else {
            return r;
        };
        let trace = match TraceRecord::read(&layout.generation(g)) {
            Ok(Some(t)) => t,
            _ => return r,
        };
        r.current = trace.databases.clone();
        if let Ok(Some(l)) = mirror_core::feed_listing::FeedListing::read(&layout.generation(g)) {
            r.feeds = l.fingerprints();
        }
        if report.published != Some(g) {
            return r;
        }
        for f in report.feeds.iter().filter(|f| f.changed()) {
            if let Some(fp) = r.feeds.get(&f.feed) {
                r.new_feeds.insert(f.feed.clone(), fp.clone());
            }
        }
        for d in &report.databases {
            let updated = d.fetched_from.is_some() && d.after != d.before;
            if updated && let Some(t) = trace.databases.get(&d.name) {
                r.new.insert(d.name.clone(), t.clone());
            }
        }
        r
    }
}
