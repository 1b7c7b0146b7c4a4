//! A real DNS server for tests (hickory, UDP on 127.0.0.1), authoritative for `test.`.
#![allow(clippy::unwrap_used)] // test support: a panic is a failure report

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use hickory_server::ServerFuture;
use hickory_server::authority::{Catalog, ZoneType};
use hickory_server::proto::rr::rdata::{SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryAuthority;

/// An authoritative server for `test.` answering `current.cvd.test.` with `record`.
pub fn start_dns(record: &str) -> SocketAddr {
    let origin = Name::from_ascii("test.").unwrap();
    let mut auth = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
    let soa = SOA::new(
        Name::from_ascii("ns.test.").unwrap(),
        Name::from_ascii("admin.test.").unwrap(),
        1,
        3600,
        600,
        86400,
        60,
    );
    auth.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1);
    auth.upsert_mut(
        Record::from_rdata(
            Name::from_ascii("current.cvd.test.").unwrap(),
            60,
            RData::TXT(TXT::new(vec![record.to_owned()])),
        ),
        1,
    );
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(auth)]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    sock.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut server = ServerFuture::new(catalog);
            server.register_socket(tokio::net::UdpSocket::from_std(sock).unwrap());
            let _ = server.block_until_done().await;
        });
    });
    addr
}
