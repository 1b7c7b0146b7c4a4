//! The version record over DNS against the real `sigserver` binary on 127.0.0.1: UDP
//! and TCP, hickory's resolver as a client (`dns_versions::lookup`), the record
//! following `current` in the same step as HTTP (also under concurrent queries while
//! generations switch), rate limiting and metrics.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::{Server, fixture, get};
use dns_versions::{DatabaseRecord, DnsConfig, VersionRecord};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

pub(crate) const ZONE: &str = "current.cvd.mirror.test";

/// Writes generation `n` holding `test.cvd` = the official `test-<v>.cvd` (and
/// `bytecode.cvd` when asked), without switching to it.
pub(crate) fn generation(root: &Path, n: u32, v: u32, bytecode: bool) -> String {
    let name = format!("g-{n:06}");
    let g = root.join("generations").join(&name);
    std::fs::create_dir_all(&g).unwrap();
    std::fs::copy(fixture(&format!("test-{v}.cvd")), g.join("test.cvd")).unwrap();
    if bytecode {
        std::fs::copy(fixture("bytecode.cvd"), g.join("bytecode.cvd")).unwrap();
    }
    name
}

pub(crate) fn start(root: &Path, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--dns-listen",
        "127.0.0.1:0",
        "--dns-zone",
        ZONE,
        "--dns-extra-zone",
        "clamav.net",
    ];
    args.extend_from_slice(extra);
    let s = Server::start(root, &args);
    let rest = s.log.wait_for("DNS: answering on udp+tcp ").unwrap();
    let dns = rest.split_whitespace().next().unwrap().parse().unwrap();
    (s, dns)
}

pub(crate) fn query_bytes(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

pub(crate) fn udp(dns: SocketAddr, name: &str, t: RecordType) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.send_to(&query_bytes(0x1234, name, t), dns).unwrap();
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.id(), 0x1234);
    assert_eq!(m.message_type(), MessageType::Response);
    m
}

pub(crate) fn tcp_exchange(c: &mut TcpStream, packet: &[u8]) -> Option<Message> {
    let mut out = (packet.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    c.write_all(&out).unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut buf).unwrap();
    Some(Message::from_vec(&buf).unwrap())
}

pub(crate) fn txt(m: &Message) -> String {
    assert_eq!(m.response_code(), ResponseCode::NoError, "{m}");
    match m.answers().first().map(|a| a.data()) {
        Some(RData::TXT(t)) => t
            .txt_data()
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        other => panic!("no TXT answer: {other:?}\n{m}"),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The version of `test.cvd` that HTTP serves now (from its header, like a client's
/// probe).
fn http_test_version(http: SocketAddr) -> u32 {
    let r = get(http, "/test.cvd", "Range: bytes=0-511\r\n");
    assert_eq!(r.status, 206);
    let head = String::from_utf8_lossy(&r.body);
    head.split(':').nth(2).unwrap().trim().parse().unwrap()
}

fn resolver(name: &str, dns: SocketAddr) -> DnsConfig {
    DnsConfig {
        name: name.to_owned(),
        nameservers: vec![dns],
        timeout: Duration::from_secs(10),
        attempts: 2,
    }
}

#[test]
fn the_record_follows_current_over_udp_tcp_and_a_real_resolver() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let g1 = generation(root, 1, 5, true);
    crate::util::switch_current(root, &g1);
    let (s, dns) = start(root, &[]);

    let before = now();
    let r = VersionRecord::parse(&txt(&udp(dns, ZONE, RecordType::TXT))).unwrap();
    assert_eq!((r.main, r.daily, r.bytecode), (0, 0, 19));
    assert_eq!(r.version_of("test"), Some(5));
    assert!(
        r.time >= before && r.time <= now(),
        "record time is the time of the answer"
    );
    assert_eq!(http_test_version(s.addr), 5);

    // hickory's resolver (what our own sync engine uses) reads the same record
    let looked = dns_versions::lookup(&resolver(ZONE, dns)).unwrap();
    assert_eq!(looked.version_of("test"), Some(5));
    assert!(!looked.is_stale(SystemTime::now(), dns_versions::DEFAULT_MAX_AGE));
    let per_db =
        DatabaseRecord::parse(&txt(&udp(dns, "test.cvd.clamav.net", RecordType::TXT))).unwrap();
    assert_eq!(per_db.version, 5);

    // publish generation 2: DNS and HTTP switch together
    let g2 = generation(root, 2, 6, true);
    crate::util::switch_current(root, &g2);
    let r = VersionRecord::parse(&txt(&udp(dns, ZONE, RecordType::TXT))).unwrap();
    assert_eq!(r.version_of("test"), Some(6));
    assert_eq!(http_test_version(s.addr), 6);
    let per_db =
        DatabaseRecord::parse(&txt(&udp(dns, "TEST.cvd.clamav.net", RecordType::TXT))).unwrap();
    assert_eq!(per_db.version, 6);
    match udp(dns, ZONE, RecordType::SOA).answers()[0].data() {
        RData::SOA(soa) => assert_eq!(soa.serial(), 2, "serial = generation"),
        other => panic!("{other:?}"),
    }

    // TCP: several queries on one connection, answered in order
    let mut c = TcpStream::connect(dns).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let m = tcp_exchange(&mut c, &query_bytes(1, ZONE, RecordType::TXT)).unwrap();
    assert_eq!(
        VersionRecord::parse(&txt(&m)).unwrap().version_of("test"),
        Some(6)
    );
    let m = tcp_exchange(
        &mut c,
        &query_bytes(2, "nope.cvd.clamav.net", RecordType::TXT),
    )
    .unwrap();
    assert_eq!((m.id(), m.response_code()), (2, ResponseCode::NXDomain));
    let m = tcp_exchange(&mut c, &query_bytes(3, "example.com", RecordType::A)).unwrap();
    assert_eq!((m.id(), m.response_code()), (3, ResponseCode::Refused));
    let m = tcp_exchange(&mut c, &[0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!((m.id(), m.response_code()), (0xabcd, ResponseCode::FormErr));
    // an answer sent to us is not answered: the server closes the connection
    let mut resp = query_bytes(4, ZONE, RecordType::TXT);
    resp[2] |= 0x80;
    assert!(tcp_exchange(&mut c, &resp).is_none());

    // garbage over UDP: nothing breaks, the server keeps answering
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [&b"\x00"[..], &[0xffu8; 512][..], &[0u8; 12][..]] {
        sock.send_to(junk, dns).unwrap();
    }
    assert_eq!(
        udp(dns, "x.current.cvd.mirror.test", RecordType::TXT).response_code(),
        ResponseCode::NXDomain
    );

    let m = s.metrics();
    let count = |outcome: &str, t: &str| {
        crate::util::metric(
            &m,
            &format!("sigserver_dns_queries_total{{transport=\"{t}\",outcome=\"{outcome}\"}}"),
        )
        .unwrap()
    };
    assert!(count("answered", "udp") >= 5.0, "{m}");
    assert_eq!(count("answered", "tcp"), 1.0, "{m}");
    assert_eq!(count("nxdomain", "tcp"), 1.0, "{m}");
    assert_eq!(count("refused", "tcp"), 1.0, "{m}");
    assert_eq!(count("formerr", "tcp"), 1.0, "{m}");
    assert_eq!(count("dropped", "tcp"), 1.0, "{m}");
    assert!(count("nxdomain", "udp") >= 1.0, "{m}");
    // too short: dropped; 0xff..: a response (QR=1): dropped; all-zero header: FORMERR
    assert_eq!(count("dropped", "udp"), 2.0, "{m}");
    assert_eq!(count("formerr", "udp"), 1.0, "{m}");
}

#[test]
fn concurrent_queries_never_see_a_version_before_http_serves_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let g = generation(root, 1, 1, false);
    crate::util::switch_current(root, &g);
    let (s, dns) = start(root, &["--dns-rate-limit", "0"]);
    let http = s.addr;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (i, name) in [ZONE, "test.cvd.clamav.net"].into_iter().enumerate() {
        let done = done.clone();
        readers.push(std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut last = 0;
            let mut after_done = 0;
            // Until the last generation is seen (the switch to it has happened once
            // `done` is set: the first answer after that must already be 6).
            while !(done.load(Ordering::Relaxed) && last == 6) || seen.len() < 20 {
                if done.load(Ordering::Relaxed) && last != 6 {
                    after_done += 1;
                    assert!(after_done <= 1, "still {last} after the switch to 6");
                }
                let text = txt(&udp(dns, name, RecordType::TXT));
                let v = if i == 0 {
                    VersionRecord::parse(&text)
                        .unwrap()
                        .version_of("test")
                        .unwrap()
                } else {
                    DatabaseRecord::parse(&text).unwrap().version
                };
                // Whatever DNS announced, HTTP already serves (or something newer).
                let served = http_test_version(http);
                assert!(served >= v, "DNS announced {v} while HTTP served {served}");
                assert!(v >= last, "DNS went back from {last} to {v}");
                last = v;
                seen.push(v);
            }
            seen
        }));
    }
    for v in 2..=6 {
        // let the readers see this generation a few times, then switch
        let g = generation(root, v, v, false);
        std::thread::sleep(Duration::from_millis(30));
        crate::util::switch_current(root, &g);
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let seen = r.join().unwrap();
        assert_eq!(*seen.last().unwrap(), 6, "{seen:?}");
        assert!(seen.len() >= 20);
    }
}

#[test]
fn udp_floods_from_one_source_are_rate_limited_with_slip() {
    let d = tempfile::tempdir().unwrap();
    let g = generation(d.path(), 1, 6, false);
    crate::util::switch_current(d.path(), &g);
    let (s, dns) = start(
        d.path(),
        &["--dns-rate-limit", "1", "--dns-rate-burst", "2"],
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let q = query_bytes(9, ZONE, RecordType::TXT);
    let sent = 40;
    for _ in 0..sent {
        sock.send_to(&q, dns).unwrap();
    }
    // Every query is accounted for (answered, slipped or dropped) before we count.
    let total = |m: &str| -> f64 {
        ["answered", "rate_limited"]
            .iter()
            .map(|o| {
                crate::util::metric(
                    m,
                    &format!("sigserver_dns_queries_total{{transport=\"udp\",outcome=\"{o}\"}}"),
                )
                .unwrap()
            })
            .sum()
    };
    let m = testkit::wait::until_some(
        "every UDP query to be counted",
        Duration::from_secs(30),
        || {
            let m = s.metrics();
            (total(&m) >= f64::from(sent)).then_some(m)
        },
    );
    let limited = crate::util::metric(
        &m,
        "sigserver_dns_queries_total{transport=\"udp\",outcome=\"rate_limited\"}",
    )
    .unwrap();
    assert!(limited > 0.0, "{m}");
    // What came back: full answers for the burst, empty TC=1 answers for the slips.
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut full, mut tc) = (0, 0);
    let mut buf = [0u8; 1024];
    while let Ok(n) = sock.recv(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.truncated() {
            assert!(m.answers().is_empty() && n <= q.len());
            tc += 1;
        } else {
            full += 1;
        }
    }
    assert!(tc > 0, "slipped answers carry TC=1");
    assert!(full + tc < sent, "some queries over the limit were dropped");
    assert!(f64::from(full) <= f64::from(sent) - limited);
    // TCP is not limited: a real client pushed there gets its answer.
    let mut c = TcpStream::connect(dns).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let m = tcp_exchange(&mut c, &q).unwrap();
    assert_eq!(
        VersionRecord::parse(&txt(&m)).unwrap().version_of("test"),
        Some(6)
    );
}

#[test]
fn dns_settings_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["--dns-listen", "127.0.0.1:0"][..],
        &["--dns-listen", "127.0.0.1:0", "--dns-zone", "nodots"][..],
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-zone",
            ZONE,
            "--dns-ttl",
            "0",
        ][..],
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-zone",
            "cvd.clamav.net",
            "--dns-extra-zone",
            "clamav.net",
        ][..],
    ] {
        let out = std::process::Command::new(crate::util::BIN)
            .arg("--dir")
            .arg(d.path())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("dns_"),
            "{args:?}"
        );
    }
}
