//! The cascade goes through the operator's proxy (the workspace's one HTTP stack,
//! `fetch::http`), and a proxy that refuses its credentials ends the cascade at once
//! with an error naming the proxy, never the password. The proxy is a
//! `testkit::http::TestServer` on 127.0.0.1 (it serves forward-proxy requests itself).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use push::cascade::{Attempt, Cascade, CascadeConfig, Downstream};
use push::notice::Notice;
use testkit::http::{Fault, Scope, TestServer};

/// Sends one notice to `url` through `proxy`; every attempt the observer heard.
fn send_via(proxy: &str, url: &str) -> Vec<Attempt> {
    let seen: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let s2 = seen.clone();
    let cascade = Cascade::new(
        vec![Downstream {
            url: url.to_owned(),
            secret: push::auth::Secret::new(b"a secret of at least 16 bytes").unwrap(),
        }],
        "origin",
        CascadeConfig {
            timeout: Duration::from_secs(10),
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            give_up_after: Duration::from_secs(5),
            http: fetch::HttpSettings {
                proxy: Some(proxy.to_owned()),
                ..fetch::HttpSettings::default()
            },
            ..CascadeConfig::default()
        },
        Arc::new(move |_: &str, a: &Attempt| s2.lock().unwrap().push(a.clone())),
    );
    let now = push::hub::now_ms();
    let notice = Notice::new(
        "origin",
        None,
        BTreeMap::from([("daily".to_owned(), 27_001)]),
        Vec::new(),
        now,
        now,
    );
    cascade.send(notice).join().unwrap();
    seen.lock().unwrap().clone()
}

#[test]
fn notices_go_through_the_configured_proxy() {
    let proxy = TestServer::start();
    // Port 9 on loopback: nothing listens; only the proxy can answer. The test server
    // has no `/push`, so the notice is refused (404) — by the proxy, which is the point.
    let attempts = send_via(&proxy.base_url(), "http://127.0.0.1:9/push");
    assert!(
        matches!(attempts.as_slice(), [Attempt::GaveUp(why)] if why.contains("refused with HTTP 404")),
        "{attempts:?}"
    );
    let log = proxy.stats().log().to_vec();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].proxied.as_deref(), Some("127.0.0.1:9"));
    assert!(log[0].header("x-push-signature").is_some());
}

#[test]
fn a_proxy_refusing_the_credentials_ends_the_cascade_with_a_plain_error() {
    let proxy = TestServer::start();
    proxy.set_fault(Scope::All, Fault::Status(407));
    let url = format!("http://mirror:hunter22@{}", proxy.addr());
    let attempts = send_via(&url, "http://127.0.0.1:9/push");
    let [Attempt::GaveUp(why)] = attempts.as_slice() else {
        panic!("one attempt, given up: {attempts:?}");
    };
    assert!(why.contains(&format!("proxy {}", proxy.addr())), "{why}");
    assert!(why.contains("rejected the credentials"), "{why}");
    assert!(
        !why.contains("hunter22") && !why.contains("mirror:"),
        "{why}"
    );
    assert_eq!(
        proxy.stats().log()[0].header("proxy-authorization"),
        Some("Basic bWlycm9yOmh1bnRlcjIy")
    );
}
