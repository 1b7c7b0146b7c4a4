//! Per-pair keys over real sockets on `::1`: a cascade signs for each downstream with
//! that pair's secret; a downstream cannot forge notices to a sibling; a receiver with
//! two keys for one sender accepts either (a rotation without a gap) until the old one
//! is removed. Everything goes through `PushSettings` (as configured) and the `POST
//! /push` listener.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use push::cascade::{Attempt, Cascade, CascadeConfig, Downstream};
use push::notice::Notice;
use push::{PushHub, PushSettings};

/// A secret file `name` in `dir` holding `text`.
fn key_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    p
}

/// A receiving mirror named `name` that accepts `senders` (name, key file), with its
/// `POST /push` listener on `[::1]:0`. Returns the hub and its push URL.
async fn receiver(
    dir: &Path,
    name: &str,
    senders: &[(&str, &Path)],
) -> (Arc<PushHub>, String, tokio::sync::oneshot::Sender<()>) {
    let mut s = PushSettings::new(name);
    s.senders = senders
        .iter()
        .map(|(n, f)| PushSettings::parse_sender(&format!("{n}={}", f.display())).unwrap())
        .collect();
    let mirror = dir.join(name);
    std::fs::create_dir_all(&mirror).unwrap();
    let hub = s.validated().unwrap().hub(&mirror).unwrap();
    let listener = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.is_ipv6());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(push::listener::serve(listener, hub.clone(), async {
        let _ = stopped.await;
    }));
    (hub, format!("http://{addr}/push"), stop)
}

/// Sends one notice from `sender` to `to` (URL and key file) and returns each
/// downstream's final attempt.
async fn send(sender: &str, to: &[(&str, &Path)], v: u32) -> BTreeMap<String, Attempt> {
    let seen: Arc<Mutex<BTreeMap<String, Attempt>>> = Arc::default();
    let s2 = seen.clone();
    let cascade = Cascade::new(
        to.iter()
            .map(|(url, key)| Downstream {
                url: (*url).to_owned(),
                secret: push::auth::Secret::from_file(key).unwrap(),
            })
            .collect(),
        sender,
        CascadeConfig {
            timeout: Duration::from_secs(10),
            give_up_after: Duration::ZERO,
            ..CascadeConfig::default()
        },
        Arc::new(move |url: &str, a: &Attempt| {
            s2.lock().unwrap().insert(url.to_owned(), a.clone());
        }),
    );
    let now = push::hub::now_ms();
    let notice = Notice::new(
        sender,
        None,
        BTreeMap::from([("daily".to_owned(), v)]),
        Vec::new(),
        now,
        now,
    );
    tokio::task::spawn_blocking(move || cascade.send(notice).join().unwrap())
        .await
        .unwrap();
    let out = seen.lock().unwrap().clone();
    assert_eq!(out.len(), to.len(), "every downstream was tried: {out:?}");
    out
}

fn refused_401(a: &Attempt) -> bool {
    matches!(a, Attempt::GaveUp(why) if why.contains("HTTP 401"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_downstream_has_its_own_key_and_cannot_forge_to_a_sibling() {
    let d = tempfile::tempdir().unwrap();
    let ka = key_file(
        d.path(),
        "tier2-3a.key",
        "secret of the pair tier2 -> tier3a",
    );
    let kb = key_file(
        d.path(),
        "tier2-3b.key",
        "secret of the pair tier2 -> tier3b",
    );
    let (_a, url_a, _stop_a) = receiver(d.path(), "tier3a", &[("tier2", &ka)]).await;
    let (_b, url_b, _stop_b) = receiver(d.path(), "tier3b", &[("tier2", &kb)]).await;

    // tier2 signs for each downstream with that pair's key: both accept.
    let got = send("tier2", &[(&url_a, &ka), (&url_b, &kb)], 5).await;
    assert_eq!(got[&url_a], Attempt::Delivered, "{got:?}");
    assert_eq!(got[&url_b], Attempt::Delivered, "{got:?}");

    // tier3a knows its own key only: a notice it signs as tier2 is refused by tier3b.
    let forged = send("tier2", &[(&url_b, &ka)], 6).await;
    assert!(refused_401(&forged[&url_b]), "{forged:?}");
    // Nor can it pass as some other sender.
    let other = send("tier3a", &[(&url_b, &ka)], 6).await;
    assert!(refused_401(&other[&url_b]), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_without_a_gap() {
    let d = tempfile::tempdir().unwrap();
    let old = key_file(d.path(), "old.key", "the old secret of tier2 -> tier3");
    let new = key_file(d.path(), "new.key", "the new secret of tier2 -> tier3");

    // 1. The receiver adds the new key beside the old one: either is accepted.
    let (_h, url, stop) = receiver(d.path(), "tier3", &[("tier2", &old), ("tier2", &new)]).await;
    let with_old = send("tier2", &[(&url, &old)], 5).await;
    assert_eq!(with_old[&url], Attempt::Delivered, "{with_old:?}");
    // 2. The sender switches to the new key.
    let with_new = send("tier2", &[(&url, &new)], 6).await;
    assert_eq!(with_new[&url], Attempt::Delivered, "{with_new:?}");
    drop(stop);

    // 3. The receiver drops the old key: the new one still passes, the old one no more.
    let (_h, url, _stop) = receiver(d.path(), "tier3", &[("tier2", &new)]).await;
    let with_new = send("tier2", &[(&url, &new)], 7).await;
    assert_eq!(with_new[&url], Attempt::Delivered, "{with_new:?}");
    let with_old = send("tier2", &[(&url, &old)], 8).await;
    assert!(refused_401(&with_old[&url]), "{with_old:?}");
}

#[test]
fn settings_of_per_pair_keys() {
    // URL=FILE, or URL alone (then push_key signs).
    let (u, k) = PushSettings::parse_downstream("http://[::1]:8081/push=/etc/k").unwrap();
    assert_eq!(
        (u.as_str(), k),
        ("http://[::1]:8081/push", Some("/etc/k".into()))
    );
    assert_eq!(
        PushSettings::parse_downstream("http://tier3a.example/push").unwrap(),
        ("http://tier3a.example/push".to_owned(), None)
    );
    assert!(PushSettings::parse_downstream("http://tier3a.example/push=").is_err());

    let mut s = PushSettings::new("tier2");
    s.downstreams = vec![
        PushSettings::parse_downstream("http://a.example/push=/k/a").unwrap(),
        PushSettings::parse_downstream("http://b.example/push").unwrap(),
    ];
    let e = s.clone().validated().unwrap_err().to_string();
    assert!(
        e.contains("b.example") && e.contains("needs a secret"),
        "{e}"
    );
    s.key = Some("/k/shared".into());
    assert!(s.validated().is_ok());

    // At most four keys for one sender at a time.
    let mut s = PushSettings::new("tier3");
    for i in 0..5 {
        s.senders.push(("tier2".into(), format!("/k/{i}").into()));
    }
    let e = s.clone().validated().unwrap_err().to_string();
    assert!(e.contains("at most 4"), "{e}");
    s.senders.pop();
    assert!(s.validated().is_ok());
}
