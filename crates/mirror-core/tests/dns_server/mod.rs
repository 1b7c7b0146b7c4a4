//! A real DNS server for tests (hickory, UDP on 127.0.0.1), authoritative for `test.`:
//! [`testkit::dns`] with the one record the mirror tests ask for.

use std::net::SocketAddr;

/// An authoritative server for `test.` answering `current.cvd.test.` with `record`.
pub fn start_dns(record: &str) -> SocketAddr {
    testkit::dns::start(&[("current.cvd.test.", vec![record])])
}
