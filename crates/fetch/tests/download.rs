//! `fetch` against a real, misbehaving HTTP server on 127.0.0.1 (`testkit::http`).
//!
//! Every failure case also checks that no partial file is left under the final name.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fetch::{Client, ClientBuilder, Conditional, Downloaded, Error, Outcome, Upstreams};
use testkit::http::{Fault, RetryAfter, Scope, TestServer};

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn builder() -> ClientBuilder {
    Client::builder()
        .no_proxy()
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .read_timeout(Duration::from_secs(10))
}

/// An unconditional range read (never `304`).
fn range(c: &Client, url: &str, r: std::ops::Range<u64>) -> Result<Vec<u8>, Error> {
    c.fetch_range(url, r, &Conditional::none())
        .map(|got| got.expect("304 Not Modified to a request without validators"))
}

fn client() -> Client {
    builder().build().unwrap()
}

fn get(
    c: &Client,
    url: &str,
    dir: &Path,
    name: &str,
    cond: &Conditional,
) -> Result<Outcome, Error> {
    c.download(url, dir, name, cond, &mut |_| {})
}

/// An unconditional download of `url` into `dir/name`.
fn get_new(c: &Client, url: &str, dir: &Path, name: &str) -> Result<Outcome, Error> {
    get(c, url, dir, name, &Conditional::none())
}

/// A download of `url` into `dir/name` by a client that does not retry, which must
/// fail (the test arranged a fault); its error.
fn first_attempt_fails(url: &str, dir: &Path, name: &str) -> Error {
    get_new(&builder().retries(0).build().unwrap(), url, dir, name).unwrap_err()
}

fn downloaded(o: Outcome) -> Downloaded {
    match o {
        Outcome::Downloaded(d) => d,
        Outcome::NotModified => panic!("expected a download, got NotModified"),
    }
}

fn assert_no_file(dir: &Path, name: &str) {
    assert!(!dir.join(name).exists(), "{name} must not exist");
}

fn assert_clean(dir: &Path, name: &str) {
    assert_no_file(dir, name);
    assert!(!dir.join(format!("{name}.part")).exists());
    assert!(!dir.join(format!("{name}.part.meta")).exists());
}

#[test]
fn downloads_hashes_and_renames() {
    let server = TestServer::start();
    let data = body(300_000, 1);
    server.put("/daily.cvd", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut calls = 0u32;
    let mut last = None;
    let o = c
        .download(
            &server.url("/daily.cvd"),
            dir.path(),
            "daily.cvd",
            &Conditional::none(),
            &mut |p| {
                calls += 1;
                last = Some(p);
            },
        )
        .unwrap();
    let d = downloaded(o);
    assert_eq!(d.path, dir.path().join("daily.cvd"));
    assert_eq!(std::fs::read(&d.path).unwrap(), data);
    assert_eq!(d.size, data.len() as u64);
    assert!(d.etag.is_some());
    assert!(!d.resumed);
    assert!(calls >= 2);
    let last = last.unwrap();
    assert_eq!(last.received, data.len() as u64);
    assert_eq!(last.total, Some(data.len() as u64));
    assert!(!dir.path().join("daily.cvd.part").exists());
    assert_eq!(c.body_bytes(), data.len() as u64);
    let log = server.stats();
    let ua = log.log()[0].header("user-agent").unwrap();
    assert!(ua.starts_with("clamav-mirror/"), "{ua}");
    // the local mtime is the server's Last-Modified
    let mtime = std::fs::metadata(&d.path).unwrap().modified().unwrap();
    assert_eq!(Some(mtime), d.last_modified);
}

#[test]
fn not_modified_costs_no_body_bytes() {
    let server = TestServer::start();
    server.put("/main.cvd", body(5000, 2));
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let url = server.url("/main.cvd");
    let d = downloaded(get_new(&c, &url, dir.path(), "main.cvd").unwrap());
    let before = server.stats().total_body_bytes();
    let by_etag = Conditional {
        etag: d.etag.clone(),
        last_modified: None,
    };
    assert_eq!(
        get(&c, &url, dir.path(), "main.cvd", &by_etag).unwrap(),
        Outcome::NotModified
    );
    let by_mtime = Conditional::from_file(&dir.path().join("main.cvd")).unwrap();
    assert!(by_mtime.last_modified.is_some());
    assert_eq!(
        get(&c, &url, dir.path(), "main.cvd", &by_mtime).unwrap(),
        Outcome::NotModified
    );
    let st = server.stats();
    assert_eq!(st.total_body_bytes(), before);
    assert_eq!(c.body_bytes(), 5000);
    let reqs = st.log_for("/main.cvd");
    assert_eq!(reqs[1].header("if-none-match"), d.etag.as_deref());
    assert!(reqs[2].header("if-modified-since").is_some());
    assert_eq!(reqs[2].status, 304);
    // the local file is untouched
    assert_eq!(
        std::fs::read(dir.path().join("main.cvd")).unwrap(),
        body(5000, 2)
    );
}

#[test]
fn rate_limit_with_seconds_is_persisted_and_never_retried_into() {
    let server = TestServer::start();
    server.put("/daily.cvd", body(100, 3));
    server.set_fault(
        Scope::All,
        Fault::RateLimit(Some(RetryAfter::Seconds(3600))),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cooldown.json");
    let url = server.url("/daily.cvd");
    let c = builder().cooldown_file(&state).build().unwrap();
    let t0 = SystemTime::now();
    let e = get_new(&c, &url, dir.path(), "daily.cvd").unwrap_err();
    let Error::RateLimited { upstream, until } = &e else {
        panic!("expected RateLimited, got {e}");
    };
    assert_eq!(upstream, &server.addr().to_string());
    assert!(*until >= t0 + Duration::from_secs(3599));
    assert!(e.to_string().contains(&server.addr().to_string()));
    assert_eq!(
        server.stats().requests("/daily.cvd"),
        1,
        "a 429 is not retried"
    );
    assert_clean(dir.path(), "daily.cvd");

    // Even once the server is fine, neither this client nor a restarted one asks it.
    server.clear_faults();
    assert!(matches!(
        get_new(&c, &url, dir.path(), "daily.cvd"),
        Err(Error::RateLimited { .. })
    ));
    let restarted = builder().cooldown_file(&state).build().unwrap();
    assert!(restarted.cooldown_until(&url).is_some());
    assert!(matches!(
        range(&restarted, &url, 0..512),
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(server.stats().requests("/daily.cvd"), 1);
    // A client without the state file is not affected (cool-downs are per state).
    let fresh = builder().build().unwrap();
    assert!(get_new(&fresh, &url, dir.path(), "daily.cvd").is_ok());
}

#[test]
fn rate_limit_with_http_date() {
    let server = TestServer::start();
    server.put("/daily.cvd", body(100, 3));
    let when = UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 7200,
        );
    server.set_fault(
        Scope::path("/daily.cvd"),
        Fault::RateLimit(Some(RetryAfter::Date(when))),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = get_new(
        &client(),
        &server.url("/daily.cvd"),
        dir.path(),
        "daily.cvd",
    )
    .unwrap_err();
    assert_eq!(e.rate_limited_until(), Some(when));
    assert_clean(dir.path(), "daily.cvd");
}

#[test]
fn unavailable_with_retry_after_cools_down_without_it_retries() {
    let server = TestServer::start();
    server.put("/a.cvd", body(1000, 4));
    let dir = tempfile::tempdir().unwrap();
    server.set_fault_times(Scope::All, Fault::Unavailable(None), 2);
    let c = client();
    let d = downloaded(get_new(&c, &server.url("/a.cvd"), dir.path(), "a.cvd").unwrap());
    assert_eq!(std::fs::read(d.path).unwrap(), body(1000, 4));
    assert_eq!(server.stats().requests("/a.cvd"), 3);

    server.set_fault(
        Scope::All,
        Fault::Unavailable(Some(RetryAfter::Seconds(60))),
    );
    let e = get_new(&c, &server.url("/a.cvd"), dir.path(), "b.cvd").unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");
    assert_eq!(server.stats().requests("/a.cvd"), 4);
    assert_clean(dir.path(), "b.cvd");
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = TestServer::start();
    server.put("/a.cvd", body(1000, 5));
    server.set_fault(Scope::All, Fault::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let c = builder().retries(2).build().unwrap();
    let url = server.url("/a.cvd");
    let e = get_new(&c, &url, dir.path(), "a.cvd").unwrap_err();
    assert!(matches!(e, Error::Status { status: 500, .. }), "{e}");
    assert!(e.to_string().contains(&url) && e.to_string().contains("500"));
    assert_eq!(server.stats().requests("/a.cvd"), 3);
    assert_clean(dir.path(), "a.cvd");

    // a 404 is not transient: one request only
    server.clear_faults();
    let e = get_new(&c, &server.url("/nope.cvd"), dir.path(), "nope.cvd").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(server.stats().requests("/nope.cvd"), 1);
}

#[test]
fn dropped_connection_is_resumed_with_range_and_if_range() {
    let server = TestServer::start();
    let data = body(200_000, 6);
    server.put("/daily.cvd", data.clone());
    server.set_fault_times(Scope::path("/daily.cvd"), Fault::DropAfter(70_000), 1);
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let d = downloaded(get_new(&c, &server.url("/daily.cvd"), dir.path(), "daily.cvd").unwrap());
    assert!(d.resumed);
    assert_eq!(d.transferred, 200_000 - 70_000);
    assert_eq!(std::fs::read(&d.path).unwrap(), data);
    let st = server.stats();
    let reqs = st.log_for("/daily.cvd");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("range"), Some("bytes=70000-"));
    assert!(reqs[1].header("if-range").is_some());
    assert_eq!(reqs[1].status, 206);
    // every byte travelled exactly once
    assert_eq!(st.body_bytes("/daily.cvd"), data.len() as u64);
    assert_eq!(c.body_bytes(), data.len() as u64);
    assert!(!dir.path().join("daily.cvd.part").exists());
    assert!(!dir.path().join("daily.cvd.part.meta").exists());
}

#[test]
fn interrupted_download_leaves_only_a_part_file_and_a_later_run_resumes() {
    let server = TestServer::start();
    let data = body(100_000, 7);
    server.put("/daily.cvd", data.clone());
    server.set_fault_times(Scope::All, Fault::DropAfter(40_000), 1);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/daily.cvd");
    let e = first_attempt_fails(&url, dir.path(), "daily.cvd");
    assert!(
        matches!(
            e,
            Error::Truncated {
                expected: 100_000,
                ..
            }
        ),
        "{e}"
    );
    assert_no_file(dir.path(), "daily.cvd");
    assert_eq!(
        std::fs::read(dir.path().join("daily.cvd.part")).unwrap(),
        &data[..40_000]
    );
    // "restarted process": a new client resumes
    let d = downloaded(get_new(&client(), &url, dir.path(), "daily.cvd").unwrap());
    assert!(d.resumed);
    assert_eq!(std::fs::read(&d.path).unwrap(), data);
    assert_eq!(server.stats().body_bytes("/daily.cvd"), 100_000);
}

#[test]
fn server_ignoring_range_restarts_cleanly() {
    let server = TestServer::start();
    let data = body(100_000, 8);
    server.put("/daily.cvd", data.clone());
    server.set_fault_times(Scope::All, Fault::DropAfter(30_000), 1);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/daily.cvd");
    let _ = first_attempt_fails(&url, dir.path(), "daily.cvd");
    assert!(dir.path().join("daily.cvd.part").exists());
    server.set_fault(Scope::All, Fault::IgnoreRange);
    let d = downloaded(get_new(&client(), &url, dir.path(), "daily.cvd").unwrap());
    assert!(!d.resumed);
    assert_eq!(std::fs::read(&d.path).unwrap(), data);
    let st = server.stats();
    assert_eq!(st.log_for("/daily.cvd")[1].status, 200);
}

#[test]
fn changed_file_is_not_spliced_onto_an_old_partial() {
    let server = TestServer::start();
    let old = body(100_000, 9);
    let new = body(120_000, 10);
    server.put_modified(
        "/daily.cvd",
        old,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    server.set_fault_times(Scope::All, Fault::DropAfter(50_000), 1);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/daily.cvd");
    let _ = first_attempt_fails(&url, dir.path(), "daily.cvd");
    server.put_modified(
        "/daily.cvd",
        new.clone(),
        UNIX_EPOCH + Duration::from_secs(1_700_003_600),
    );
    let d = downloaded(get_new(&client(), &url, dir.path(), "daily.cvd").unwrap());
    assert!(!d.resumed);
    assert_eq!(std::fs::read(&d.path).unwrap(), new);
    // the server saw If-Range, found it stale and sent the whole new file
    let st = server.stats();
    let second = st.log_for("/daily.cvd")[1];
    assert!(second.header("if-range").is_some());
    assert_eq!(second.status, 200);
}

#[test]
fn wrong_content_length_is_truncation() {
    let server = TestServer::start();
    server.put("/a.cvd", body(1000, 11));
    server.set_fault(Scope::All, Fault::ContentLength(5000));
    let dir = tempfile::tempdir().unwrap();
    let e = get_new(
        &builder().retries(1).build().unwrap(),
        &server.url("/a.cvd"),
        dir.path(),
        "a.cvd",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Truncated {
                expected: 5000,
                received: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert_no_file(dir.path(), "a.cvd");
}

#[test]
fn slow_body_completes_and_a_silent_server_times_out() {
    let server = TestServer::start();
    let data = body(4000, 12);
    server.put("/slow.cvd", data.clone());
    server.set_fault(
        Scope::path("/slow.cvd"),
        Fault::Slow {
            chunk: 500,
            delay: Duration::from_millis(20),
        },
    );
    server.set_fault(Scope::path("/hang.cvd"), Fault::Hang);
    let dir = tempfile::tempdir().unwrap();
    let c = builder()
        .read_timeout(Duration::from_millis(1500))
        .retries(1)
        .build()
        .unwrap();
    let d = downloaded(get_new(&c, &server.url("/slow.cvd"), dir.path(), "slow.cvd").unwrap());
    assert_eq!(std::fs::read(d.path).unwrap(), data);

    let quick = builder()
        .read_timeout(Duration::from_millis(200))
        .retries(1)
        .build()
        .unwrap();
    let e = get_new(&quick, &server.url("/hang.cvd"), dir.path(), "hang.cvd").unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("/hang.cvd"));
    assert_eq!(
        server.stats().requests("/hang.cvd"),
        2,
        "a timeout is retried"
    );
    assert_clean(dir.path(), "hang.cvd");
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let server = TestServer::start();
    server.put("/real.cvd", body(2000, 13));
    server.set_fault(
        Scope::path("/moved.cvd"),
        Fault::Redirect("/real.cvd".into()),
    );
    server.set_fault(
        Scope::path("/loop.cvd"),
        Fault::Redirect("/loop.cvd".into()),
    );
    let dir = tempfile::tempdir().unwrap();
    let c = builder().max_redirects(3).build().unwrap();
    let d = downloaded(get_new(&c, &server.url("/moved.cvd"), dir.path(), "main.cvd").unwrap());
    assert_eq!(std::fs::read(d.path).unwrap(), body(2000, 13));
    let e = get_new(&c, &server.url("/loop.cvd"), dir.path(), "loop.cvd").unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("redirect"));
    assert_eq!(server.stats().requests("/loop.cvd"), 4);
    assert_clean(dir.path(), "loop.cvd");
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let server = TestServer::start();
    server.put("/a.cvd", body(100, 14));
    server.set_fault(Scope::All, Fault::Oversized(200_000));
    let dir = tempfile::tempdir().unwrap();
    let c = builder().max_body(100_000).build().unwrap();
    let e = get_new(&c, &server.url("/a.cvd"), dir.path(), "a.cvd").unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 100_000, .. }), "{e}");
    assert_clean(dir.path(), "a.cvd");
    // per-call limit
    server.clear_faults();
    let e = c
        .download_limited(
            &server.url("/a.cvd"),
            dir.path(),
            "a.cvd",
            &Conditional::none(),
            50,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 50, .. }), "{e}");
    assert_clean(dir.path(), "a.cvd");
}

#[test]
fn other_content_is_hashed_as_received() {
    // The server answers with bytes that are not the real file: `fetch` reports
    // exactly what it got (verification is the caller's job), by its hashes.
    let server = TestServer::start();
    server.put("/a.cvd", body(1000, 15));
    server.set_fault(Scope::All, Fault::Content(b"evil".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let d = downloaded(get_new(&client(), &server.url("/a.cvd"), dir.path(), "a.cvd").unwrap());
    assert_eq!(std::fs::read(&d.path).unwrap(), b"evil");
}

#[test]
fn bad_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for name in ["../x", "a/b", "", ".hidden", "a\\b"] {
        let e = get_new(&c, "http://127.0.0.1:9/x", dir.path(), name).unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{name}: {e}");
    }
}

#[test]
fn header_probe_reads_only_the_range() {
    let server = TestServer::start();
    let data = body(10_000, 16);
    server.put("/daily.cvd", data.clone());
    let c = client();
    let url = server.url("/daily.cvd");
    assert_eq!(range(&c, &url, 0..512).unwrap(), &data[..512]);
    assert_eq!(server.stats().log()[0].header("range"), Some("bytes=0-511"));
    assert_eq!(range(&c, &url, 100..200).unwrap(), &data[100..200]);
    server.set_fault(Scope::All, Fault::IgnoreRange);
    assert_eq!(range(&c, &url, 0..512).unwrap(), &data[..512]);
    assert_eq!(range(&c, &url, 100..200).unwrap(), &data[100..200]);
    server.clear_faults();
    server.put("/tiny.cvd", b"abc".to_vec());
    assert_eq!(range(&c, &server.url("/tiny.cvd"), 0..512).unwrap(), b"abc");
    assert!(matches!(
        range(&c, &url, 5..5),
        Err(Error::InvalidUrl { .. })
    ));
}

/// A probe with `If-Modified-Since` (the build time of the copy held) costs no body
/// when nothing is newer, whether or not the server honours `Range`; a newer file is
/// read as before.
#[test]
fn conditional_header_probe_is_answered_304_even_where_range_is_ignored() {
    let server = TestServer::start();
    let built = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let data = body(200_000, 21);
    server.put_modified("/daily.cvd", data.clone(), built);
    let c = client();
    let url = server.url("/daily.cvd");
    for fault in [None, Some(Fault::IgnoreRange)] {
        server.clear_faults();
        if let Some(f) = fault.clone() {
            server.set_fault(Scope::All, f);
        }
        server.reset_stats();
        let held = Conditional::modified_since(built);
        assert_eq!(
            c.fetch_range(&url, 0..512, &held).unwrap(),
            None,
            "{fault:?}"
        );
        let st = server.stats();
        assert_eq!(st.body_bytes("/daily.cvd"), 0, "{fault:?}");
        let sent = st.log()[0].header("if-modified-since").map(str::to_owned);
        assert_eq!(sent, Some(httpdate::fmt_http_date(built)));
        // An older copy held: the newer file's header comes back.
        let older = Conditional::modified_since(built - Duration::from_secs(60));
        assert_eq!(
            c.fetch_range(&url, 0..512, &older).unwrap().as_deref(),
            Some(&data[..512]),
            "{fault:?}"
        );
    }
}

/// A server that ignores `Range` and the validators and streams an endless body: the
/// probe takes its 512 bytes and closes the connection instead of reading on.
#[test]
fn probe_of_an_endless_body_reads_the_range_and_closes() {
    let server = TestServer::start();
    server.put("/daily.cvd", body(1000, 3));
    server.set_fault(Scope::All, Fault::EndlessBody);
    let c = client();
    let got = c
        .fetch_range(
            &server.url("/daily.cvd"),
            0..512,
            &Conditional::modified_since(SystemTime::now()),
        )
        .unwrap();
    assert_eq!(got.map(|b| b.len()), Some(512));
    assert_eq!(c.body_bytes(), 512);
}

#[test]
fn failover_skips_failing_cooling_and_stale_upstreams() {
    let bad = TestServer::start();
    let limited = TestServer::start();
    let good = TestServer::start();
    for s in [&bad, &limited, &good] {
        s.put("/daily.cvd", body(3000, 17));
    }
    bad.set_fault(Scope::All, Fault::Status(500));
    limited.set_fault(Scope::All, Fault::RateLimit(Some(RetryAfter::Seconds(600))));
    let ups = Upstreams::new([bad.base_url(), limited.base_url() + "/", good.base_url()]).unwrap();
    let c = builder().retries(0).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = ups
        .download(
            &c,
            "daily.cvd",
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(got.base, good.base_url());
    assert_eq!(got.url, good.url("/daily.cvd"));
    downloaded(got.value);
    assert_eq!(limited.stats().total_requests(), 1);

    // the rate-limited upstream is not asked again; a stale one is skipped too
    ups.mark_stale(&bad.url("/daily.cvd"), Duration::from_secs(600));
    assert!(ups.stale_until(&bad.base_url()).is_some());
    let got = ups
        .fetch_range(&c, "daily.cvd", 0..512, &Conditional::none())
        .unwrap();
    assert_eq!(got.base, good.base_url());
    assert_eq!(bad.stats().total_requests(), 1);
    assert_eq!(limited.stats().total_requests(), 1);

    // when nothing works, every reason is reported
    good.set_fault(Scope::All, Fault::Status(404));
    let e = ups
        .download(
            &c,
            "daily.cvd",
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        )
        .unwrap_err();
    let Error::AllUpstreamsFailed { attempts, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(attempts.len(), 3);
    assert!(!e.is_not_found());
    assert!(e.rate_limited_until().is_none());
    let msg = e.to_string();
    assert!(
        msg.contains("stale") && msg.contains("rate-limiting") && msg.contains("404"),
        "{msg}"
    );
}

#[test]
fn all_upstreams_cooling_down_reports_the_earliest_end() {
    let a = TestServer::start();
    let b = TestServer::start();
    a.set_fault(Scope::All, Fault::RateLimit(Some(RetryAfter::Seconds(100))));
    b.set_fault(
        Scope::All,
        Fault::RateLimit(Some(RetryAfter::Seconds(5000))),
    );
    let ups = Upstreams::new([a.base_url(), b.base_url()]).unwrap();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let e = ups
        .download(
            &c,
            "daily.cvd",
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        )
        .unwrap_err();
    let until = e.rate_limited_until().unwrap();
    assert!(until < SystemTime::now() + Duration::from_secs(200));
    let all404 = TestServer::start();
    let ups = Upstreams::new([all404.base_url()]).unwrap();
    let e = ups
        .download(
            &c,
            "daily.cvd",
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

/// Counted traffic for a sync-like loop over several files.
#[test]
fn nothing_new_costs_zero_body_bytes_and_a_new_version_is_fetched_once() {
    let server = TestServer::start();
    let files = ["main.cvd", "daily.cvd", "bytecode.cvd"];
    for (i, f) in files.iter().enumerate() {
        server.put_modified(
            &format!("/{f}"),
            body(10_000 + i * 1000, i as u8),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
    }
    let ups = Upstreams::new([server.base_url()]).unwrap();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let sync = || {
        let mut n = 0;
        for f in files {
            let cond = Conditional::from_file(&dir.path().join(f)).unwrap();
            let got = ups
                .download(&c, f, dir.path(), &cond, None, &mut |_| {})
                .unwrap();
            if matches!(got.value, Outcome::Downloaded(_)) {
                n += 1;
            }
        }
        n
    };
    assert_eq!(sync(), 3);
    let first = server.stats().total_body_bytes();
    assert_eq!(first, 10_000 + 11_000 + 12_000);
    server.reset_stats();
    assert_eq!(sync(), 0);
    assert_eq!(server.stats().total_body_bytes(), 0);
    assert_eq!(server.stats().total_requests(), 3);

    server.put_modified(
        "/daily.cvd",
        body(15_000, 99),
        UNIX_EPOCH + Duration::from_secs(1_700_003_600),
    );
    server.reset_stats();
    assert_eq!(sync(), 1);
    let st = server.stats();
    assert_eq!(st.requests("/daily.cvd"), 1);
    assert_eq!(st.body_bytes("/daily.cvd"), 15_000);
    assert_eq!(st.total_body_bytes(), 15_000);
    assert_eq!(
        std::fs::read(dir.path().join("daily.cvd")).unwrap(),
        body(15_000, 99)
    );
    assert_eq!(c.body_bytes(), first + 15_000);
}

#[test]
fn configured_proxy_is_used() {
    let proxy = TestServer::start();
    proxy.put("/daily.cvd", body(700, 18));
    let c = builder().proxy(proxy.base_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Port 9 on loopback: nothing listens; only the proxy can answer.
    let d =
        downloaded(get_new(&c, "http://127.0.0.1:9/daily.cvd", dir.path(), "daily.cvd").unwrap());
    assert_eq!(std::fs::read(d.path).unwrap(), body(700, 18));
    let st = proxy.stats();
    // A plain-HTTP URL goes to the proxy in absolute form (`GET http://127.0.0.1:9/…`).
    assert_eq!(st.log()[0].method, "GET");
    assert_eq!(st.log()[0].proxied.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(st.requests("/daily.cvd"), 1);
    assert!(matches!(
        Client::builder().proxy("::not a url").build(),
        Err(Error::InvalidUrl { .. })
    ));
}

/// A proxy URL with `user:password@` sends basic credentials; a `407` from the proxy
/// is an error that names the proxy (never the password) and says whether the
/// credentials were refused or missing; it is not retried.
#[test]
fn proxy_credentials_are_sent_and_a_407_names_the_proxy_not_the_password() {
    let proxy = TestServer::start();
    proxy.put("/daily.cvd", body(300, 22));
    let with_auth = format!("http://alice:s3cret@{}", proxy.addr());
    let c = builder().proxy(with_auth.as_str()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    get_new(&c, "http://127.0.0.1:9/daily.cvd", dir.path(), "daily.cvd").unwrap();
    // "alice:s3cret" in base64.
    assert_eq!(
        proxy.stats().log()[0].header("proxy-authorization"),
        Some("Basic YWxpY2U6czNjcmV0")
    );

    proxy.set_fault(Scope::All, Fault::Status(407));
    proxy.reset_stats();
    let e = get_new(&c, "http://127.0.0.1:9/daily.cvd", dir.path(), "x.cvd").unwrap_err();
    assert!(matches!(e, Error::ProxyAuth { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&proxy.addr().to_string()), "{msg}");
    assert!(msg.contains("rejected"), "{msg}");
    assert!(!msg.contains("s3cret") && !msg.contains("alice"), "{msg}");
    assert!(!e.is_transient());
    assert_eq!(proxy.stats().total_requests(), 1, "a 407 is not retried");
    assert_clean(dir.path(), "x.cvd");

    let anonymous = builder().proxy(proxy.base_url()).build().unwrap();
    let e = get_new(
        &anonymous,
        "http://127.0.0.1:9/daily.cvd",
        dir.path(),
        "x.cvd",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("requires authentication"), "{e}");
}

#[test]
fn cooldowns_have_a_default_and_a_cap() {
    let server = TestServer::start();
    server.set_fault(Scope::path("/bare"), Fault::RateLimit(None));
    let c = builder()
        .default_cooldown(Duration::from_secs(1800))
        .max_cooldown(Duration::from_secs(7200))
        .build()
        .unwrap();
    let t0 = SystemTime::now();
    let e = range(&c, &server.url("/bare"), 0..10).unwrap_err();
    let until = e.rate_limited_until().unwrap();
    assert!(until >= t0 + Duration::from_secs(1800));
    assert!(until <= SystemTime::now() + Duration::from_secs(1801));

    let other = TestServer::start();
    other.set_fault(
        Scope::All,
        Fault::RateLimit(Some(RetryAfter::Seconds(1_000_000_000))),
    );
    let e = range(&c, &other.url("/x"), 0..10).unwrap_err();
    assert!(e.rate_limited_until().unwrap() <= SystemTime::now() + Duration::from_secs(7201));

    // a malformed Retry-After on a 503 is an ordinary, retried server error
    let third = TestServer::start();
    third.put("/x", b"hello".to_vec());
    third.set_fault_times(
        Scope::All,
        Fault::Unavailable(Some(RetryAfter::Raw("soon".into()))),
        1,
    );
    assert_eq!(range(&c, &third.url("/x"), 0..10).unwrap(), b"hello");
}

#[test]
fn custom_user_agent_is_sent() {
    let server = TestServer::start();
    server.put("/x", b"hi".to_vec());
    let c = builder()
        .user_agent("acme-mirror/9 (+ops@example.invalid)")
        .build()
        .unwrap();
    range(&c, &server.url("/x"), 0..2).unwrap();
    assert_eq!(
        server.stats().log()[0].header("user-agent"),
        Some("acme-mirror/9 (+ops@example.invalid)")
    );
}

#[test]
fn one_client_serves_parallel_downloads() {
    let server = TestServer::start();
    for i in 0..4u8 {
        server.put(&format!("/f{i}.cvd"), body(50_000, i));
    }
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let (c, server, dir) = (&c, &server, dir.path());
            s.spawn(move || {
                let name = format!("f{i}.cvd");
                let d = downloaded(get_new(c, &server.url(&name), dir, &name).unwrap());
                assert_eq!(std::fs::read(d.path).unwrap(), body(50_000, i));
            });
        }
    });
    assert_eq!(c.body_bytes(), 200_000);
}

#[test]
fn bodies_without_content_length_are_streamed_under_the_limit() {
    let server = TestServer::start();
    let data = body(100_000, 19);
    server.put("/a.cvd", data.clone());
    server.set_fault(Scope::path("/a.cvd"), Fault::NoContentLength);
    server.set_fault(Scope::path("/endless.cvd"), Fault::EndlessBody);
    let c = builder().max_body(1_000_000).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut totals = Vec::new();
    let d = downloaded(
        c.download(
            &server.url("/a.cvd"),
            dir.path(),
            "a.cvd",
            &Conditional::none(),
            &mut |p| totals.push(p.total),
        )
        .unwrap(),
    );
    assert_eq!(std::fs::read(d.path).unwrap(), data);
    assert!(totals.iter().all(Option::is_none));

    let e = get_new(&c, &server.url("/endless.cvd"), dir.path(), "endless.cvd").unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                limit: 1_000_000,
                ..
            }
        ),
        "{e}"
    );
    assert_clean(dir.path(), "endless.cvd");
    // the limit is enforced on what arrived, not on the whole stream
    assert!(c.body_bytes() <= 100_000 + 1_000_000 + 64 * 1024);
}

/// A dead upstream (connection refused) costs its retries once: for the next
/// [`fetch::UNREACHABLE_FOR`] it is tried after the others (issue 23, the
/// master is down), and first again once it answers.
#[test]
fn an_unreachable_upstream_is_tried_last_until_it_answers() {
    // a port nothing listens on (bound, then closed)
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let good = TestServer::start();
    let ups = Upstreams::new([dead.clone(), good.base_url()]).unwrap();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let order = |file: &str| -> Vec<String> {
        match ups.download(
            &c,
            file,
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        ) {
            Err(Error::AllUpstreamsFailed { attempts, .. }) => {
                attempts.into_iter().map(|(b, _)| b).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(!ups.unreachable(&dead));
    assert_eq!(order("a.cvd"), [dead.clone(), good.base_url()]);
    assert!(ups.unreachable(&dead));
    assert_eq!(order("b.cvd"), [good.base_url(), dead.clone()]);
    // a file the good upstream has comes from it, with no attempt at the dead one first
    good.put("/c.cvd", body(100, 1));
    let got = ups
        .download(
            &c,
            "c.cvd",
            dir.path(),
            &Conditional::none(),
            None,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(got.base, good.base_url());
}
