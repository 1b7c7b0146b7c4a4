//! The network view: the downstream subtree of this mirror, polled in the background.
//!
//! Given its downstreams (by default the push downstreams, whose URLs become
//! `<scheme>://<host:port>/status.json`), a background thread reads each one's
//! `/status.json` every poll interval: at most [`CONCURRENCY`] at a time, each read
//! bounded by [`FETCH_TIMEOUT`] and [`MAX_BODY`] bytes, no redirects. The results are
//! cached; `/status` and `/status.json` only read the cache, so a client's request
//! never waits on the network. Each downstream reports its own subtree in its
//! document's `network` field, so the whole tree appears; it is cut at [`MAX_DEPTH`]
//! levels and [`MAX_NODES`] mirrors.
//!
//! Every mirror of the tree is classified against this mirror's served versions, like
//! Debian's mirror checker colours mirrors by age:
//!
//! * `current`: it serves every database at this mirror's version or newer;
//! * `behind_one`: some database is one version behind, for less than the ready lag;
//! * `behind_long`: a database is more than one version behind, or behind for longer
//!   than the ready lag (measured from this mirror's publish of its version);
//! * `unreachable`: the last poll failed (connection, HTTP status, size, time or
//!   document), or it was never polled successfully.
//!
//! Everything a downstream answers is display data: it is size-bounded, parsed into
//! [`NetworkNode`]s, and escaped by the page like any other outside text.

use crate::serve::unix_now;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::status_page::{NetworkNode, STATUS_FORMAT, StatusDoc, redact};

/// Time allowed for one downstream's `/status.json` (connect to last byte).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest `/status.json` read from a downstream.
pub const MAX_BODY: u64 = 1 << 20;
/// Most downstreams polled at the same time.
pub const CONCURRENCY: usize = 4;
/// Deepest level of the subtree kept (this mirror's downstreams are level 1).
pub const MAX_DEPTH: usize = 6;
/// Most mirrors kept in the subtree.
pub const MAX_NODES: usize = 256;

/// State names (see the module documentation).
pub const CURRENT: &str = "current";
/// One version behind, within the lag.
pub const BEHIND_ONE: &str = "behind_one";
/// Further behind, or for longer than the lag.
pub const BEHIND_LONG: &str = "behind_long";
/// Not answering.
pub const UNREACHABLE: &str = "unreachable";

#[derive(Debug, Clone)]
struct Polled {
    at: i64,
    result: Result<NetworkNode, String>,
    /// The name it reported last time it answered.
    name: Option<String>,
}

/// The poller's cache (shared with the server state).
#[derive(Debug)]
pub(crate) struct NetworkView {
    targets: Vec<String>,
    cache: Mutex<BTreeMap<String, Polled>>,
}

/// The `/status.json` URL of a downstream given by its push URL or base URL (path,
/// query and fragment are replaced); `None` for something that is not an HTTP(S) URL.
pub fn status_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}/status.json"))
}

impl NetworkView {
    /// Starts polling `downstreams` every `every`; the thread ends when the returned
    /// view is dropped.
    pub(crate) fn spawn(
        downstreams: &[String],
        every: Duration,
        http: &fetch::HttpSettings,
    ) -> Option<Arc<Self>> {
        let mut targets: Vec<String> = downstreams.iter().filter_map(|d| status_url(d)).collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return None;
        }
        let view = Arc::new(NetworkView {
            targets,
            cache: Mutex::new(BTreeMap::new()),
        });
        let weak = Arc::downgrade(&view);
        let http = http.clone();
        let spawned = std::thread::Builder::new()
            .name("sigserver-network".into())
            .spawn(move || poll_loop(weak, every, &http));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the network view poller");
        }
        Some(view)
    }

    fn poll_once(&self, agent: &reqwest::blocking::Client) {
        let next = Mutex::new(0usize);
        std::thread::scope(|s| {
            for _ in 0..CONCURRENCY.min(self.targets.len()) {
                s.spawn(|| {
                    loop {
                        let i = {
                            let mut g = next.lock().unwrap_or_else(|e| e.into_inner());
                            let i = *g;
                            *g += 1;
                            i
                        };
                        let Some(url) = self.targets.get(i) else {
                            break;
                        };
                        let result = fetch(agent, url);
                        if let Err(e) = &result {
                            tracing::debug!(downstream = %redact(url), "status poll failed: {e}");
                        }
                        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                        let name = match &result {
                            Ok(n) => n.mirror.clone(),
                            Err(_) => cache.get(url).and_then(|p| p.name.clone()),
                        };
                        let polled = Polled {
                            at: unix_now(),
                            result,
                            name,
                        };
                        cache.insert(url.clone(), polled);
                    }
                });
            }
        });
    }

    /// The subtree as last polled, classified against `own` (this mirror's document).
    pub(crate) fn snapshot(&self, own: &StatusDoc) -> Vec<NetworkNode> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let reference = Reference::of(own);
        let mut budget = MAX_NODES;
        self.targets
            .iter()
            .map(|url| {
                let mut node = match cache.get(url) {
                    Some(Polled {
                        at, result: Ok(n), ..
                    }) => {
                        let mut n = n.clone();
                        n.polled_at = Some(*at);
                        n
                    }
                    Some(Polled {
                        result: Err(e),
                        name,
                        ..
                    }) => NetworkNode {
                        mirror: name.clone(),
                        error: Some(e.clone()),
                        ..NetworkNode::default()
                    },
                    None => NetworkNode {
                        error: Some("not polled yet".into()),
                        ..NetworkNode::default()
                    },
                };
                node.url = redact(url);
                let reachable = node.error.is_none();
                classify(&mut node, &reference, 1, &mut budget, reachable);
                node
            })
            .collect()
    }
}

fn poll_loop(weak: Weak<NetworkView>, every: Duration, http: &fetch::HttpSettings) {
    // The workspace's one HTTP stack, with the operator's CA and proxy settings.
    let agent = http.blocking_builder(false).and_then(|b| {
        b.timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "sigserver/",
                env!("CARGO_PKG_VERSION"),
                " network-view"
            ))
            .build()
            .map_err(|e| fetch::Error::InvalidUrl {
                url: String::new(),
                reason: format!("cannot build the HTTP client: {e}"),
            })
    });
    let agent = match agent {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "network view: no HTTP client; not polling");
            return;
        }
    };
    loop {
        let Some(view) = weak.upgrade() else {
            return;
        };
        view.poll_once(&agent);
        drop(view);
        // Sleep in short steps so a dropped view ends the thread soon.
        let deadline = std::time::Instant::now() + every;
        while std::time::Instant::now() < deadline {
            if weak.strong_count() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(200).min(every));
        }
    }
}

/// One bounded read of a downstream's `/status.json`.
fn fetch(agent: &reqwest::blocking::Client, url: &str) -> Result<NetworkNode, String> {
    let resp = agent
        .get(url)
        .send()
        .map_err(|e| redact(&fetch::http::error_chain(&e)))?;
    let code = resp.status().as_u16();
    if code != 200 {
        return Err(format!("HTTP {code}"));
    }
    let mut body = Vec::new();
    resp.take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| redact(&e.to_string()))?;
    if body.len() as u64 > MAX_BODY {
        return Err(format!("status.json larger than {MAX_BODY} bytes"));
    }
    let doc: StatusDoc =
        serde_json::from_slice(&body).map_err(|e| format!("not a status document: {e}"))?;
    if doc.format != STATUS_FORMAT {
        return Err(format!("status format {} not understood", doc.format));
    }
    Ok(NetworkNode {
        url: String::new(),
        mirror: doc.mirror,
        state: String::new(),
        error: None,
        polled_at: None,
        versions: doc
            .databases
            .iter()
            .filter_map(|(n, d)| d.version.map(|v| (n.clone(), v)))
            .collect(),
        ready: Some(doc.ready.ready),
        last_success: doc.last_success,
        behind_since: doc.databases.values().filter_map(|d| d.behind_since).min(),
        children: doc.network,
    })
}

/// What the subtree is compared with: this mirror's versions and when it published
/// each.
struct Reference {
    versions: BTreeMap<String, (u32, Option<i64>)>,
    lag: i64,
    now: i64,
}

impl Reference {
    fn of(own: &StatusDoc) -> Self {
        Reference {
            versions: own
                .databases
                .iter()
                .filter_map(|(n, d)| {
                    let since = d
                        .trace
                        .as_ref()
                        .filter(|t| Some(t.version) == d.version)
                        .map(|t| i64::try_from(t.published_ms / 1000).unwrap_or(i64::MAX))
                        .or(own.last_publish);
                    d.version.map(|v| (n.clone(), (v, since)))
                })
                .collect(),
            lag: i64::try_from(own.ready.lag_secs).unwrap_or(i64::MAX),
            now: own.generated_at,
        }
    }

    fn state_of(&self, versions: &BTreeMap<String, u32>) -> &'static str {
        let mut worst = CURRENT;
        for (db, (mine, since)) in &self.versions {
            let theirs = versions.get(db).copied().unwrap_or(0);
            if theirs >= *mine {
                continue;
            }
            let long = since.is_some_and(|s| self.now.saturating_sub(s) > self.lag);
            if mine - theirs > 1 || long {
                return BEHIND_LONG;
            }
            worst = BEHIND_ONE;
        }
        worst
    }
}

fn classify(
    node: &mut NetworkNode,
    r: &Reference,
    depth: usize,
    budget: &mut usize,
    reachable: bool,
) {
    *budget = budget.saturating_sub(1);
    node.url = redact(&node.url);
    node.error = node.error.as_deref().map(redact);
    node.state = if reachable {
        r.state_of(&node.versions).to_owned()
    } else {
        UNREACHABLE.to_owned()
    };
    if depth >= MAX_DEPTH {
        node.children.clear();
    }
    let keep = node.children.len().min(*budget);
    node.children.truncate(keep);
    for c in &mut node.children {
        // A child's own poller decided whether it answered.
        let ok = c.error.is_none() && c.state != UNREACHABLE;
        classify(c, r, depth + 1, budget, ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_url_replaces_the_path() {
        assert_eq!(
            status_url("http://h:81/push").as_deref(),
            Some("http://h:81/status.json")
        );
        assert_eq!(
            status_url("https://h").as_deref(),
            Some("https://h/status.json")
        );
        assert_eq!(status_url("ftp://h/"), None);
        assert_eq!(status_url("http:///x"), None);
    }

    #[test]
    fn states_follow_versions_and_lag() {
        let r = Reference {
            versions: BTreeMap::from([("daily".to_owned(), (10, Some(1000)))]),
            lag: 600,
            now: 1100,
        };
        let v = |n| BTreeMap::from([("daily".to_owned(), n)]);
        assert_eq!(r.state_of(&v(10)), CURRENT);
        assert_eq!(r.state_of(&v(11)), CURRENT);
        assert_eq!(r.state_of(&v(9)), BEHIND_ONE);
        assert_eq!(r.state_of(&v(8)), BEHIND_LONG);
        assert_eq!(r.state_of(&BTreeMap::new()), BEHIND_LONG);
        let late = Reference { now: 1601, ..r };
        assert_eq!(late.state_of(&v(9)), BEHIND_LONG);
    }
}
