//! Learn which database versions upstream holds: the DNS TXT record, HTTP header
//! probes, and a mirror's own `dns.txt` manifest.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
