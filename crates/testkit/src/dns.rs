//! A real DNS server for tests: `hickory-server`, in-process, UDP on 127.0.0.1,
//! authoritative for the zone `test.` and serving TXT records (the ClamAV version
//! record is a TXT record, e.g. `current.cvd.test.`).
//!
//! ```
//! let addr = testkit::dns::start(&[("current.cvd.test.", vec!["1.4.3:62:27466:0:0:90:0:335"])]);
//! assert!(addr.ip().is_loopback());
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use hickory_server::ServerFuture;
use hickory_server::authority::{Catalog, ZoneType};
use hickory_server::proto::rr::rdata::{A, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryAuthority;

/// Starts an authoritative server for zone `test.` holding `txt` records (name →
/// character-strings; several entries for one name make several TXT records) and an
/// A record (127.0.0.1) for `a-only.test.`, and returns its address. It runs until the
/// test process ends.
///
/// # Panics
/// When a name is not a valid DNS name, or no loopback UDP port can be bound or
/// served (test support: failing loudly is right).
#[allow(clippy::expect_used)]
pub fn start(txt: &[(&str, Vec<&str>)]) -> SocketAddr {
    let name = |n: &str| Name::from_ascii(n).expect("a valid DNS name");
    let origin = name("test.");
    let mut auth = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
    let soa = SOA::new(
        name("ns.test."),
        name("admin.test."),
        1,
        3600,
        600,
        86400,
        60,
    );
    auth.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1);
    auth.upsert_mut(
        Record::from_rdata(name("a-only.test."), 60, RData::A(A::new(127, 0, 0, 1))),
        1,
    );
    for (n, strings) in txt {
        let rec = Record::from_rdata(
            name(n),
            60,
            RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())),
        );
        auth.upsert_mut(rec, 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(auth)]);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP 127.0.0.1:0");
    let addr = sock.local_addr().expect("local_addr");
    sock.set_nonblocking(true).expect("set_nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the DNS server");
        rt.block_on(async move {
            let mut server = ServerFuture::new(catalog);
            server.register_socket(
                tokio::net::UdpSocket::from_std(sock).expect("a tokio UDP socket"),
            );
            let _ = server.block_until_done().await;
        });
    });
    addr
}
