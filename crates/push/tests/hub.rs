//! The hub and the notice format through the public API: round trips and arbitrary
//! bytes (proptest), coalescing under a flood, a lying notice.

use std::collections::BTreeMap;
use std::time::Duration;

use mirror_core::trace::Hop;
use proptest::prelude::*;
use push::auth::Secret;
use push::hub::{Outgoing, PushHub, SyncResult};
use push::notice::Notice;
use push::receiver::{NoticeHeaders, Receiver, ReceiverConfig};

fn secret() -> Secret {
    Secret::new(b"the tier1 secret, 0123456789").unwrap()
}

fn hub(dir: &std::path::Path, published: u32) -> std::sync::Arc<PushHub> {
    let r = Receiver::new(
        BTreeMap::from([("tier1".to_owned(), secret())]),
        ReceiverConfig::default(),
    );
    PushHub::new(
        dir,
        r,
        Outgoing {
            name: "tier2".into(),
            url: None,
            cascade: None,
        },
        BTreeMap::from([("daily".to_owned(), published)]),
    )
}

fn now() -> u64 {
    push::hub::now_ms() / 1000
}

/// A signed notice from tier1 announcing daily at `v`, signed `ago` seconds ago.
fn notice(v: u32, ago: u64) -> (NoticeHeaders, Vec<u8>) {
    let n = Notice::new(
        "tier1",
        None,
        BTreeMap::from([("daily".to_owned(), v)]),
        vec![Hop {
            mirror: "origin".into(),
            published_ms: 1,
        }],
        2,
        3,
    );
    let body = n.to_bytes();
    let ts = now() - ago;
    let h = NoticeHeaders {
        sender: Some("tier1".into()),
        timestamp: Some(ts.to_string()),
        signature: Some(secret().sign("tier1", ts, &body)),
    };
    (h, body)
}

/// Whether the hub asks for a sync within `d`.
async fn wakes_within(h: &PushHub, d: Duration) -> bool {
    tokio::time::timeout(d, h.wait()).await.is_ok()
}

#[tokio::test]
async fn a_thousand_notices_during_a_sync_cost_one_more_pass() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub(dir.path(), 1);
    assert!(!wakes_within(&h, Duration::from_millis(50)).await);
    let (hd, b) = notice(2, 0);
    assert_eq!(h.handle(&hd, &b).status, 202);
    assert!(wakes_within(&h, Duration::from_secs(1)).await);
    let first = h.begin();
    assert_eq!(first.reason, "push");
    assert_eq!(first.announced["daily"].0, 2);
    assert_eq!(first.hints.hops_for("daily", 2)[0].mirror, "origin");
    // The flood arrives while the first sync runs.
    let mut statuses = BTreeMap::<u16, u32>::new();
    for i in 0..999 {
        let (hd, b) = notice(2, i % 250);
        *statuses.entry(h.handle(&hd, &b).status).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 202 || *s == 429),
        "{statuses:?}"
    );
    // The first sync publishes 2.
    let done = SyncResult {
        published: BTreeMap::from([("daily".to_owned(), 2)]),
        upstream: BTreeMap::from([("daily".to_owned(), 2)]),
        ..SyncResult::default()
    };
    h.finish(&first, &done);
    // Exactly one more pass...
    assert!(wakes_within(&h, Duration::from_secs(1)).await);
    let second = h.begin();
    h.finish(&second, &done);
    // ...and no third, even as more notices for 2 arrive.
    let (hd, b) = notice(2, 1);
    let r = h.handle(&hd, &b);
    assert!(
        r.status == 429 || r.body == "accepted: already_published\n",
        "{r:?}"
    );
    assert!(!wakes_within(&h, Duration::from_millis(200)).await);
}

#[tokio::test]
async fn a_lying_notice_costs_one_sync_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub(dir.path(), 5);
    let (hd, b) = notice(10, 0);
    assert_eq!(h.handle(&hd, &b).body, "accepted: sync\n");
    assert!(wakes_within(&h, Duration::from_secs(1)).await);
    let req = h.begin();
    // The sync finds upstream at 5: nothing to publish.
    let same = SyncResult {
        published: BTreeMap::from([("daily".to_owned(), 5)]),
        upstream: BTreeMap::from([("daily".to_owned(), 5)]),
        ..SyncResult::default()
    };
    h.finish(&req, &same);
    let state = push::state::PushState::read(dir.path()).unwrap().unwrap();
    assert_eq!(state.unconfirmed["daily"].version, 10);
    assert!(
        state.announced.is_empty(),
        "a lie does not make the mirror look behind"
    );
    // The same lie, or a bigger one, starts nothing.
    for v in [10, 11] {
        let (hd, b) = notice(v, 0);
        assert_eq!(h.handle(&hd, &b).body, "accepted: unconfirmed\n");
    }
    assert!(!wakes_within(&h, Duration::from_millis(200)).await);
    // A real version below the lie still gets through.
    let (hd, b) = notice(6, 0);
    assert_eq!(h.handle(&hd, &b).body, "accepted: sync\n");
    assert!(wakes_within(&h, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_real_version_not_published_yet_stays_announced() {
    let dir = tempfile::tempdir().unwrap();
    let h = hub(dir.path(), 5);
    let (hd, b) = notice(6, 0);
    h.handle(&hd, &b);
    let req = h.begin();
    // Upstream has 6 but it failed verification here: still announced (for /ready).
    h.finish(
        &req,
        &SyncResult {
            published: BTreeMap::from([("daily".to_owned(), 5)]),
            upstream: BTreeMap::from([("daily".to_owned(), 6)]),
            ..SyncResult::default()
        },
    );
    let state = push::state::PushState::read(dir.path()).unwrap().unwrap();
    assert_eq!(state.announced["daily"].version, 6);
    assert!(state.unconfirmed.is_empty());
}

fn names() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,12}"
}

proptest! {
    #[test]
    fn notices_round_trip(
        dbs in prop::collection::btree_map(names(), any::<u32>(), 1..8),
        hops in prop::collection::vec(("[a-zA-Z0-9._-]{1,20}", any::<u64>()), 0..40),
        sender in "[a-z0-9-]{1,20}",
        url in prop::option::of("http://[a-z0-9.]{1,30}(:[0-9]{1,5})?"),
    ) {
        let hops: Vec<Hop> = hops.into_iter().map(|(mirror, published_ms)| Hop { mirror, published_ms }).collect();
        let n = Notice::new(&sender, url.as_deref(), dbs, hops, 7, 8);
        prop_assert!(n.hops.len() <= mirror_core::trace::MAX_HOPS);
        prop_assert_eq!(n.hops.last().map(|h| h.mirror.as_str()), Some(sender.as_str()));
        prop_assert_eq!(Notice::parse(&n.to_bytes()).unwrap(), n);
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_parsed_never_a_panic(b in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = Notice::parse(&b);
    }
}
