//! Serving over IPv6: the real `sigserver` binary listening on `[::1]` for HTTP and
//! DNS (UDP and TCP), its rate limits applied to a `::1` client (keyed by its /64, the
//! same limiter for both; the /64 and /32 keying itself is tested in `rate-limit`).

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use dns_versions::VersionRecord;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::dns::{ZONE, generation, query_bytes, tcp_exchange, txt};
use crate::util::{Server, get, switch_current};

fn udp_query(sock: &UdpSocket, dns: SocketAddr, id: u16) -> Message {
    sock.send_to(&query_bytes(id, ZONE, RecordType::TXT), dns)
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.id(), id);
    m
}

#[test]
fn http_and_dns_over_ipv6_loopback_with_rate_limits() {
    let d = tempfile::tempdir().unwrap();
    let g = generation(d.path(), 1, 6, false);
    switch_current(d.path(), &g);
    let s = Server::start(
        d.path(),
        &[
            "--listen",
            "[::1]:0",
            "--rate-limit",
            "0.001",
            "--rate-burst",
            "2",
            "--dns-listen",
            "[::1]:0",
            "--dns-zone",
            ZONE,
            "--dns-rate-limit",
            "0.001",
            "--dns-rate-burst",
            "2",
        ],
    );
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    let rest = s.log.wait_for("DNS: answering on udp+tcp ").unwrap();
    let dns: SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
    assert!(dns.is_ipv6(), "{dns}");

    // HTTP: the burst of two is served, the third request from ::1 waits.
    for _ in 0..2 {
        let r = get(s.addr, "/test.cvd", "Range: bytes=0-511\r\n");
        assert_eq!(r.status, 206);
        assert!(String::from_utf8_lossy(&r.body).starts_with("ClamAV-VDB:"));
    }
    let r = get(s.addr, "/test.cvd", "");
    assert_eq!(r.status, 429);
    assert!(
        r.header("Retry-After")
            .is_some_and(|v| v.parse::<u64>().unwrap() >= 1)
    );

    // DNS over UDP: two full answers, then the first query over the limit gets an empty
    // TC=1 answer (the slip), sent back to ::1.
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for id in 1..=2 {
        let m = udp_query(&sock, dns, id);
        assert!(!m.truncated());
        assert_eq!(
            VersionRecord::parse(&txt(&m)).unwrap().version_of("test"),
            Some(6)
        );
    }
    let m = udp_query(&sock, dns, 3);
    assert!(m.truncated() && m.answers().is_empty(), "{m}");

    // DNS over TCP on ::1 (not rate limited: a client pushed there gets its answer).
    let mut c = TcpStream::connect(dns).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let m = tcp_exchange(&mut c, &query_bytes(4, ZONE, RecordType::TXT)).unwrap();
    assert_eq!(
        VersionRecord::parse(&txt(&m)).unwrap().version_of("test"),
        Some(6)
    );
    let metrics = s.metrics();
    assert_eq!(
        crate::util::metric(&metrics, "sigserver_rate_limited_total"),
        Some(1.0),
        "{metrics}"
    );
}
