//! `lookup` against a real DNS server (`hickory-server`, in-process, UDP on 127.0.0.1)
//! serving TXT records: fresh, stale, malformed, missing, and one that never answers.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dns_versions::{DEFAULT_MAX_AGE, DnsConfig, Error, lookup};
use testkit::dns::start as start_dns;

fn cfg(name: &str, ns: SocketAddr) -> DnsConfig {
    DnsConfig {
        name: name.to_string(),
        nameservers: vec![ns],
        timeout: Duration::from_secs(5),
        attempts: 1,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn fresh_stale_malformed_and_missing_records() {
    let now = now_secs();
    let fresh = format!("1.4.3:62:27466:{now}:0:90:0:335");
    let stale = format!("1.4.3:62:27400:{}:0:90:0:335", now - 13 * 3600);
    let split = [
        "1.4.3:62:27466:".to_string(),
        format!("{now}:0:90:0:335:mydb=4"),
    ];
    let addr = start_dns(&[
        ("current.cvd.test.", vec![fresh.as_str()]),
        ("stale.cvd.test.", vec![stale.as_str()]),
        (
            "split.cvd.test.",
            vec![split[0].as_str(), split[1].as_str()],
        ),
        (
            "garbage.cvd.test.",
            vec!["1.4.3:62:notanumber:1700000000:0:90:0:335"],
        ),
        ("short.cvd.test.", vec!["1.4.3:62:27466"]),
    ]);

    let r = lookup(&cfg("current.cvd.test", addr)).unwrap();
    assert_eq!((r.main, r.daily, r.bytecode, r.time), (62, 27466, 335, now));
    assert!(!r.is_stale(SystemTime::now(), DEFAULT_MAX_AGE));

    let r = lookup(&cfg("stale.cvd.test.", addr)).unwrap();
    assert_eq!(r.daily, 27400);
    assert!(r.is_stale(SystemTime::now(), DEFAULT_MAX_AGE));
    assert!(r.age(SystemTime::now()) >= Duration::from_secs(13 * 3600));

    // one TXT record of two character-strings is one record
    let r = lookup(&cfg("split.cvd.test", addr)).unwrap();
    assert_eq!(r.daily, 27466);
    assert_eq!(r.version_of("mydb"), Some(4));

    let e = lookup(&cfg("garbage.cvd.test", addr)).unwrap_err();
    assert!(matches!(e, Error::Field { field: 2, .. }), "{e}");
    assert!(e.to_string().contains("daily version"), "{e}");
    let e = lookup(&cfg("short.cvd.test", addr)).unwrap_err();
    assert!(matches!(e, Error::Field { field: 3, .. }), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");

    let e = lookup(&cfg("nonexistent.test", addr)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nonexistent.test"), "{e}");
    let e = lookup(&cfg("a-only.test", addr)).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
}

#[test]
fn several_records_first_valid_wins() {
    let now = now_secs();
    let good = format!("1.4.3:62:27466:{now}:0:90:0:335");
    let addr = start_dns(&[
        ("multi.test.", vec!["garbage"]),
        ("multi.test.", vec![good.as_str()]),
    ]);
    assert_eq!(lookup(&cfg("multi.test", addr)).unwrap().daily, 27466);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Bound, never read: queries vanish.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = DnsConfig {
        name: "current.cvd.test".into(),
        nameservers: vec![silent.local_addr().unwrap()],
        timeout: Duration::from_millis(300),
        attempts: 1,
    };
    let e = lookup(&c).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("current.cvd.test"), "{e}");
    drop(silent);
}

#[test]
fn default_config_names_the_official_record() {
    let c = DnsConfig::default();
    assert_eq!(c.name, "current.cvd.clamav.net");
    assert!(c.nameservers.is_empty());
}
