//! The packet handler: one query packet in, the answer bytes out (or nothing). No I/O:
//! the published versions come from a closure that is only called for names in our
//! zones, so the UDP and TCP loops, the unit tests and the fuzz target share it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dns_versions::{DatabaseRecord, VersionRecord};
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// Largest UDP answer to a query with EDNS (the 2020 DNS flag day value: no IP
/// fragmentation on common paths).
pub const MAX_UDP_EDNS: u16 = 1232;
/// Largest UDP answer to a query without EDNS (RFC 1035).
pub const MAX_UDP_PLAIN: usize = 512;
/// Most additional records a query may carry (OPT, a cookie or TSIG); a query never
/// carries answer or authority records.
const MAX_ADDITIONAL: u16 = 4;
/// DNS header length.
const HEADER_LEN: usize = 12;
/// Longest TXT character-string.
const TXT_CHUNK: usize = 255;
/// SOA timers (refresh, retry, expire): there are no secondaries, so these only need
/// to be sane.
const SOA_TIMERS: (i32, i32, i32) = (3600, 600, 86_400);

/// How the query arrived (UDP answers are size-limited, TCP ones are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: answers larger than the client's limit are truncated (`TC=1`).
    Udp,
    /// TCP, length-prefixed (RFC 7766).
    Tcp,
}

impl Transport {
    /// Both transports, in metrics order.
    pub const ALL: [Transport; 2] = [Transport::Udp, Transport::Tcp];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What happened to one query (the `outcome` label of `sigserver_dns_queries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A TXT, SOA or NS answer.
    Answered,
    /// The name exists, the type does not (NOERROR, no answer, SOA in authority).
    NoData,
    /// A name under one of our zones that does not exist.
    NxDomain,
    /// A name outside our zones, or a class other than IN: we never recurse.
    Refused,
    /// A malformed query (or an EDNS version we do not speak: BADVERS).
    FormErr,
    /// An opcode other than QUERY.
    NotImp,
    /// The published snapshot could not be read.
    ServFail,
    /// The answer did not fit the UDP limit: sent with `TC=1` and no records.
    Truncated,
    /// Over the per-source rate limit: dropped, or sent with `TC=1` (slip).
    RateLimited,
    /// Not answered at all (too short, or a response rather than a query).
    Dropped,
}

impl Outcome {
    /// Every outcome, in metrics order.
    pub const ALL: [Outcome; 10] = [
        Outcome::Answered,
        Outcome::NoData,
        Outcome::NxDomain,
        Outcome::Refused,
        Outcome::FormErr,
        Outcome::NotImp,
        Outcome::ServFail,
        Outcome::Truncated,
        Outcome::RateLimited,
        Outcome::Dropped,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::NoData => "nodata",
            Outcome::NxDomain => "nxdomain",
            Outcome::Refused => "refused",
            Outcome::FormErr => "formerr",
            Outcome::NotImp => "notimp",
            Outcome::ServFail => "servfail",
            Outcome::Truncated => "truncated",
            Outcome::RateLimited => "rate_limited",
            Outcome::Dropped => "dropped",
        }
    }
}

/// The zones we are authoritative for, and the fixed parts of the answers.
#[derive(Debug, Clone)]
pub(crate) struct Zones {
    /// The main record's name and zone apex, lower case (e.g. `current.cvd.mirror.example.`).
    pub(crate) main: Name,
    /// `cvd.<extra domain>.` when `--dns-extra-zone` is set (e.g. `cvd.clamav.net.`).
    pub(crate) extra: Option<Name>,
    /// The name server name in NS and SOA MNAME.
    pub(crate) ns: Name,
    /// TTL of every record, and the SOA minimum (negative caching).
    pub(crate) ttl: u32,
}

/// The versions of one published snapshot, as the DNS answers need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    /// Held databases whose names can be DNS labels, by name.
    versions: BTreeMap<String, u32>,
    /// The main record (its time field is set per answer).
    record: VersionRecord,
    /// SOA serial.
    serial: u32,
}

impl Published {
    /// The versions of a snapshot; `serial` numbers it (the generation). Databases the
    /// record format cannot carry (upper-case names) are left out.
    pub(crate) fn new(versions: &BTreeMap<String, u32>, serial: u32) -> Published {
        let mut record = VersionRecord::new(UNIX_EPOCH, 0, 0, 0);
        let mut kept = BTreeMap::new();
        for (db, &v) in versions {
            match record.set_version(db, v) {
                Ok(()) => {
                    kept.insert(db.clone(), v);
                }
                Err(e) => tracing::warn!(db = %db, "not announced over DNS: {e}"),
            }
        }
        Published {
            versions: kept,
            record,
            serial,
        }
    }

    /// The announced versions, by database.
    pub(crate) fn versions(&self) -> &BTreeMap<String, u32> {
        &self.versions
    }

    /// The SOA serial.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    /// The main record made at `now`.
    pub(crate) fn main_record(&self, now: SystemTime) -> VersionRecord {
        let mut r = self.record.clone();
        r.time = unix(now);
        r
    }

    /// The per-database record of `db` made at `now`, if `db` is held.
    pub(crate) fn database_record(&self, db: &str, now: SystemTime) -> Option<DatabaseRecord> {
        self.versions.get(db).map(|&v| DatabaseRecord::new(v, now))
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The handler's verdict: what to count and what to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) outcome: Outcome,
    /// `None`: send nothing.
    pub(crate) bytes: Option<Vec<u8>>,
}

impl Reply {
    fn drop() -> Reply {
        Reply {
            outcome: Outcome::Dropped,
            bytes: None,
        }
    }
}

/// Which node of our zones a name is.
enum Node {
    /// The main record's name (zone apex).
    MainApex,
    /// `cvd.<extra>` (zone apex).
    ExtraApex,
    /// `current.cvd.<extra>`: the main record again, for clients with the default
    /// `DNSDatabaseInfo` whose resolver sends `cvd.clamav.net` to us.
    ExtraCurrent,
    /// `<db>.cvd.<extra>`, label lower-cased.
    ExtraDb(String),
}

/// Answers one query `packet` that arrived over `transport` at `now`.
///
/// `limited`: the source is over its rate limit and this query is let through as a
/// "slip": the answer carries no records and `TC=1`, so a real client retries over
/// TCP while a spoofed source gets nothing bigger than its query. `published` is
/// called only for names in our zones; `None` means the snapshot is unreadable
/// (SERVFAIL).
pub(crate) fn respond(
    packet: &[u8],
    zones: &Zones,
    transport: Transport,
    now: SystemTime,
    limited: bool,
    published: impl FnOnce() -> Option<Arc<Published>>,
) -> Reply {
    if packet.len() < HEADER_LEN {
        return Reply::drop();
    }
    let Ok(h) = Header::read(&mut BinDecoder::new(packet)) else {
        return Reply::drop();
    };
    if h.message_type() == MessageType::Response {
        // Never answer an answer: no loops between servers, no reflection of
        // spoofed responses.
        return Reply::drop();
    }
    if h.op_code() != OpCode::Query {
        return bare(&h, ResponseCode::NotImp, Outcome::NotImp);
    }
    // Checked on the raw counts before decoding, so a hostile count never sizes an
    // allocation.
    if h.query_count() != 1
        || h.answer_count() != 0
        || h.name_server_count() != 0
        || h.additional_count() > MAX_ADDITIONAL
    {
        return bare(&h, ResponseCode::FormErr, Outcome::FormErr);
    }
    let Ok(msg) = Message::from_vec(packet) else {
        return bare(&h, ResponseCode::FormErr, Outcome::FormErr);
    };
    let Some(q) = msg.queries().first() else {
        return bare(&h, ResponseCode::FormErr, Outcome::FormErr);
    };

    let mut resp = Message::new();
    resp.set_id(h.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(h.recursion_desired())
        .set_recursion_available(false)
        .set_checking_disabled(h.checking_disabled());
    resp.add_query(q.clone());
    let mut udp_limit = MAX_UDP_PLAIN;
    if let Some(edns) = msg.extensions() {
        let mut mine = Edns::new();
        mine.set_max_payload(MAX_UDP_EDNS).set_version(0);
        resp.set_edns(mine);
        if edns.version() > 0 {
            resp.set_response_code(ResponseCode::BADVERS);
            return encode(resp, Outcome::FormErr);
        }
        udp_limit = usize::from(edns.max_payload().clamp(512, MAX_UDP_EDNS));
    }
    if limited {
        resp.set_truncated(true);
        return encode(resp, Outcome::RateLimited);
    }
    let outcome = fill(&mut resp, q, zones, now, published);
    let reply = encode(resp.clone(), outcome);
    match (&reply.bytes, transport) {
        (Some(b), Transport::Udp) if b.len() > udp_limit => {
            resp.take_answers();
            resp.take_name_servers();
            resp.take_additionals();
            resp.set_truncated(true);
            encode(resp, Outcome::Truncated)
        }
        _ => reply,
    }
}

/// Fills the answer sections of `resp` for `q` and says what it was.
fn fill(
    resp: &mut Message,
    q: &Query,
    zones: &Zones,
    now: SystemTime,
    published: impl FnOnce() -> Option<Arc<Published>>,
) -> Outcome {
    if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
        resp.set_response_code(ResponseCode::Refused);
        return Outcome::Refused;
    }
    let qname = q.name().to_lowercase();
    let (apex, node) = if zones.main.zone_of_case(&qname) {
        let node = (labels(&qname) == labels(&zones.main)).then_some(Node::MainApex);
        (&zones.main, node)
    } else if let Some(extra) = zones.extra.as_ref().filter(|z| z.zone_of_case(&qname)) {
        let node = match labels(&qname) - labels(extra) {
            0 => Some(Node::ExtraApex),
            1 => qname
                .iter()
                .next()
                .and_then(|l| std::str::from_utf8(l).ok())
                .map(|l| {
                    if l == "current" {
                        Node::ExtraCurrent
                    } else {
                        Node::ExtraDb(l.to_owned())
                    }
                }),
            _ => None,
        };
        (extra, node)
    } else {
        resp.set_response_code(ResponseCode::Refused);
        return Outcome::Refused;
    };
    let Some(p) = published() else {
        resp.set_response_code(ResponseCode::ServFail);
        return Outcome::ServFail;
    };
    resp.set_authoritative(true);
    let owner = q.name().clone();
    let qtype = q.query_type();
    let txt = |resp: &mut Message, text: String| {
        resp.add_answer(Record::from_rdata(
            owner.clone(),
            zones.ttl,
            RData::TXT(split_txt(&text)),
        ));
        Outcome::Answered
    };
    let is_txt = matches!(qtype, RecordType::TXT | RecordType::ANY);
    match node {
        Some(Node::MainApex | Node::ExtraApex) if qtype == RecordType::SOA => {
            resp.add_answer(soa(apex, zones, p.serial));
            Outcome::Answered
        }
        Some(Node::MainApex | Node::ExtraApex) if qtype == RecordType::NS => {
            resp.add_answer(Record::from_rdata(
                apex.clone(),
                zones.ttl,
                RData::NS(NS(zones.ns.clone())),
            ));
            Outcome::Answered
        }
        Some(Node::MainApex | Node::ExtraCurrent) if is_txt => {
            txt(resp, p.main_record(now).to_string())
        }
        Some(Node::ExtraDb(db)) => match p.database_record(&db, now) {
            Some(r) if is_txt => txt(resp, r.to_string()),
            Some(_) => no_data(resp, apex, zones, p.serial),
            None => nx_domain(resp, apex, zones, p.serial),
        },
        Some(_) => no_data(resp, apex, zones, p.serial),
        None => nx_domain(resp, apex, zones, p.serial),
    }
}

/// The number of labels (`Name::num_labels` does not count a leading `*`).
fn labels(n: &Name) -> usize {
    n.iter().count()
}

fn no_data(resp: &mut Message, apex: &Name, zones: &Zones, serial: u32) -> Outcome {
    resp.add_name_server(soa(apex, zones, serial));
    Outcome::NoData
}

fn nx_domain(resp: &mut Message, apex: &Name, zones: &Zones, serial: u32) -> Outcome {
    resp.set_response_code(ResponseCode::NXDomain);
    resp.add_name_server(soa(apex, zones, serial));
    Outcome::NxDomain
}

/// The SOA of `apex`: MNAME the configured name server, RNAME `hostmaster.<apex>`,
/// the snapshot's serial, minimum = TTL (negative answers are cached no longer than
/// positive ones).
fn soa(apex: &Name, zones: &Zones, serial: u32) -> Record {
    let rname = apex
        .prepend_label("hostmaster")
        .unwrap_or_else(|_| apex.clone());
    let (refresh, retry, expire) = SOA_TIMERS;
    Record::from_rdata(
        apex.clone(),
        zones.ttl,
        RData::SOA(SOA::new(
            zones.ns.clone(),
            rname,
            serial,
            refresh,
            retry,
            expire,
            zones.ttl,
        )),
    )
}

/// One TXT record holding `text` as character-strings of at most 255 bytes (the
/// record is ASCII). freshclam reads only the first string: the standard fields are
/// always in it (they are far shorter than 255 bytes).
fn split_txt(text: &str) -> TXT {
    TXT::new(
        text.as_bytes()
            .chunks(TXT_CHUNK)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect(),
    )
}

/// A header-only answer (no question: it may not have parsed).
fn bare(h: &Header, code: ResponseCode, outcome: Outcome) -> Reply {
    let mut resp = Message::new();
    resp.set_id(h.id())
        .set_message_type(MessageType::Response)
        .set_op_code(h.op_code())
        .set_recursion_desired(h.recursion_desired())
        .set_response_code(code);
    encode(resp, outcome)
}

fn encode(resp: Message, outcome: Outcome) -> Reply {
    match resp.to_vec() {
        Ok(bytes) => Reply {
            outcome,
            bytes: Some(bytes),
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a DNS answer");
            Reply {
                outcome: Outcome::ServFail,
                bytes: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use hickory_proto::op::Query;
    use proptest::prelude::*;

    const NOW: u64 = 1_764_000_000;

    fn zones() -> Zones {
        let cfg = crate::dns::DnsConfig::builder("Current.CVD.mirror.test.")
            .listen(["127.0.0.1:0".parse().unwrap()])
            .extra_zone("clamav.net")
            .nameserver("ns1.mirror.test")
            .ttl(Duration::from_secs(45))
            .build()
            .unwrap();
        cfg.zones
    }

    fn published() -> Arc<Published> {
        let v = BTreeMap::from([
            ("main".to_owned(), 62),
            ("daily".to_owned(), 27_000),
            ("bytecode".to_owned(), 19),
            ("test".to_owned(), 6),
            ("Upper".to_owned(), 3),
        ]);
        Arc::new(Published::new(&v, 42))
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0xbeef).set_recursion_desired(true);
        let mut q = Query::query(Name::from_ascii(name).unwrap(), t);
        q.set_query_class(DNSClass::IN);
        m.add_query(q);
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn ask(packet: &[u8], t: Transport) -> (Outcome, Option<Message>) {
        let r = respond(packet, &zones(), t, now(), false, || Some(published()));
        (r.outcome, r.bytes.map(|b| Message::from_vec(&b).unwrap()))
    }

    fn txt_of(m: &Message) -> String {
        let a = &m.answers()[0];
        match a.data() {
            RData::TXT(t) => t
                .txt_data()
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            other => panic!("not TXT: {other:?}"),
        }
    }

    fn common(m: &Message) {
        assert_eq!(m.id(), 0xbeef);
        assert_eq!(m.message_type(), MessageType::Response);
        assert!(!m.recursion_available(), "never offers recursion");
        assert!(m.recursion_desired(), "RD is copied");
    }

    /// The worst query within the limits (issue 21 item 2): the longest name (127
    /// one-byte labels, 255 bytes), `MAX_ADDITIONAL` additional records whose names
    /// are compression pointers to it, and EDNS. Names are at most 255 bytes and
    /// pointers may only point backwards (hickory-proto), the counts are checked
    /// before decoding and a UDP query is at most 4 KiB: the work per packet is
    /// bounded by constants. It gets a proper answer; pointer loops get FORMERR.
    #[test]
    fn worst_case_queries_are_answered_or_refused_cleanly() {
        let mut worst = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 4];
        for _ in 0..127 {
            worst.extend_from_slice(b"\x01a");
        }
        worst.push(0);
        worst.extend_from_slice(&[0, 16, 0, 1]);
        for _ in 0..3 {
            worst.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
        worst.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        for t in Transport::ALL {
            let (o, m) = ask(&worst, t);
            assert_eq!(o, Outcome::Refused, "{t:?}");
            let m = m.unwrap();
            common(&m);
            assert_eq!(m.queries()[0].name().num_labels(), 127);
        }

        // A name that points at itself, one that points forwards, and a chain of
        // pointers that would make a name longer than 255 bytes.
        let header = [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut looping = header.to_vec();
        looping.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1]);
        let mut forward = header.to_vec();
        forward.extend_from_slice(&[0xC0, 14, 0, 0, 16, 0, 1]);
        let mut too_long = header.to_vec();
        too_long[11] = 1; // one additional record
        for _ in 0..127 {
            too_long.extend_from_slice(b"\x01a");
        }
        too_long.push(0);
        too_long.extend_from_slice(&[0, 16, 0, 1]);
        too_long.extend_from_slice(b"\x03bbb\xC0\x0C"); // 4 + 255 bytes
        too_long.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        for bad in [looping, forward, too_long] {
            for t in Transport::ALL {
                let (o, m) = ask(&bad, t);
                assert_eq!(o, Outcome::FormErr, "{t:?} {bad:x?}");
                assert_eq!(m.unwrap().response_code(), ResponseCode::FormErr);
            }
        }
    }

    #[test]
    fn main_record_in_freshclams_format_with_the_time_of_the_answer() {
        // Mixed case as a resolver using 0x20 randomisation sends it.
        let (o, m) = ask(
            &query("cUrrent.cvd.MIRROR.test.", RecordType::TXT, None),
            Transport::Udp,
        );
        let m = m.unwrap();
        common(&m);
        assert_eq!(o, Outcome::Answered);
        assert!(m.authoritative());
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert_eq!(m.answers().len(), 1);
        let a = &m.answers()[0];
        assert_eq!(
            a.name().to_ascii(),
            "cUrrent.cvd.MIRROR.test.",
            "owner echoes the question"
        );
        assert_eq!(a.ttl(), 45);
        let text = txt_of(&m);
        assert_eq!(text, format!("0.0.0:62:27000:{NOW}:0:0:0:19:test=6"));
        // One grammar: our parser reads it back, and freshclam's positions hold.
        let r = VersionRecord::parse(&text).unwrap();
        assert_eq!((r.main, r.daily, r.bytecode, r.time), (62, 27_000, 19, NOW));
        let f: Vec<&str> = text.split(':').collect();
        assert_eq!(
            (f[1], f[2], f[3], f[4], f[7]),
            ("62", "27000", &*NOW.to_string(), "0", "19")
        );
        // ANY gets the TXT record too (what freshclam's ANY fallback asks).
        let (o, m) = ask(
            &query("current.cvd.mirror.test.", RecordType::ANY, None),
            Transport::Udp,
        );
        assert_eq!(o, Outcome::Answered);
        assert_eq!(txt_of(&m.unwrap()), text);
    }

    #[test]
    fn soa_ns_and_nodata_at_the_apex() {
        let (o, m) = ask(
            &query("current.cvd.mirror.test.", RecordType::SOA, None),
            Transport::Tcp,
        );
        let m = m.unwrap();
        common(&m);
        assert_eq!(o, Outcome::Answered);
        match m.answers()[0].data() {
            RData::SOA(soa) => {
                assert_eq!(soa.serial(), 42);
                assert_eq!(soa.minimum(), 45);
                assert_eq!(soa.mname().to_ascii(), "ns1.mirror.test.");
                assert_eq!(
                    soa.rname().to_ascii(),
                    "hostmaster.current.cvd.mirror.test."
                );
            }
            other => panic!("{other:?}"),
        }
        let (o, m) = ask(
            &query("current.cvd.mirror.test.", RecordType::NS, None),
            Transport::Udp,
        );
        assert_eq!(o, Outcome::Answered);
        match m.unwrap().answers()[0].data() {
            RData::NS(ns) => assert_eq!(ns.0.to_ascii(), "ns1.mirror.test."),
            other => panic!("{other:?}"),
        }
        for t in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::CNAME,
        ] {
            let (o, m) = ask(&query("current.cvd.mirror.test.", t, None), Transport::Udp);
            let m = m.unwrap();
            assert_eq!(o, Outcome::NoData, "{t}");
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert!(m.answers().is_empty() && m.authoritative());
            assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
        }
    }

    #[test]
    fn nxdomain_below_the_zone_and_refused_outside() {
        for name in [
            "x.current.cvd.mirror.test.",
            "*.current.cvd.mirror.test.",
            "a.b.current.cvd.mirror.test.",
        ] {
            let (o, m) = ask(&query(name, RecordType::TXT, None), Transport::Udp);
            let m = m.unwrap();
            assert_eq!(o, Outcome::NxDomain, "{name}");
            assert_eq!(m.response_code(), ResponseCode::NXDomain);
            assert!(m.authoritative() && m.answers().is_empty());
            assert_eq!(
                m.name_servers()[0].name().to_ascii(),
                "current.cvd.mirror.test."
            );
        }
        for name in [
            "cvd.mirror.test.",
            "mirror.test.",
            "example.com.",
            ".",
            "database.clamav.net.",
            "clamav.net.",
        ] {
            let (o, m) = ask(&query(name, RecordType::TXT, None), Transport::Udp);
            let m = m.unwrap();
            assert_eq!(o, Outcome::Refused, "{name}");
            assert_eq!(m.response_code(), ResponseCode::Refused);
            assert!(!m.authoritative() && m.answers().is_empty() && m.name_servers().is_empty());
        }
        // Another class (CHAOS version.bind and friends): refused.
        let mut m =
            Message::from_vec(&query("current.cvd.mirror.test.", RecordType::TXT, None)).unwrap();
        m.queries_mut()[0].set_query_class(DNSClass::CH);
        let (o, _) = ask(&m.to_vec().unwrap(), Transport::Udp);
        assert_eq!(o, Outcome::Refused);
    }

    #[test]
    fn extra_zone_per_database_records() {
        let (o, m) = ask(
            &query("test.cvd.clamav.net.", RecordType::TXT, None),
            Transport::Udp,
        );
        let m = m.unwrap();
        assert_eq!(o, Outcome::Answered);
        assert!(m.authoritative());
        let text = txt_of(&m);
        assert_eq!(text, format!("6:{NOW}"));
        assert_eq!(
            DatabaseRecord::parse(&text).unwrap(),
            DatabaseRecord {
                version: 6,
                time: NOW
            }
        );
        // main/daily/bytecode too, and current.cvd.clamav.net is the main record
        let (_, m) = ask(
            &query("Bytecode.cvd.clamav.net.", RecordType::TXT, None),
            Transport::Udp,
        );
        assert_eq!(txt_of(&m.unwrap()), format!("19:{NOW}"));
        let (_, m) = ask(
            &query("current.cvd.clamav.net.", RecordType::TXT, None),
            Transport::Udp,
        );
        assert_eq!(
            txt_of(&m.unwrap()),
            format!("0.0.0:62:27000:{NOW}:0:0:0:19:test=6")
        );
        // not held (or not expressible): NXDOMAIN; other types: NODATA
        for name in [
            "other.cvd.clamav.net.",
            "upper.cvd.clamav.net.",
            "safebrowsing.cvd.clamav.net.",
            "x.test.cvd.clamav.net.",
        ] {
            let (o, m) = ask(&query(name, RecordType::TXT, None), Transport::Udp);
            assert_eq!(o, Outcome::NxDomain, "{name}");
            assert_eq!(
                m.unwrap().name_servers()[0].name().to_ascii(),
                "cvd.clamav.net."
            );
        }
        let (o, _) = ask(
            &query("test.cvd.clamav.net.", RecordType::A, None),
            Transport::Udp,
        );
        assert_eq!(o, Outcome::NoData);
        let (o, m) = ask(
            &query("cvd.clamav.net.", RecordType::SOA, None),
            Transport::Udp,
        );
        assert_eq!(o, Outcome::Answered);
        assert_eq!(m.unwrap().answers()[0].name().to_ascii(), "cvd.clamav.net.");
        let (o, _) = ask(
            &query("cvd.clamav.net.", RecordType::TXT, None),
            Transport::Udp,
        );
        assert_eq!(o, Outcome::NoData);
        // without the extra zone: refused
        let mut z = zones();
        z.extra = None;
        let r = respond(
            &query("test.cvd.clamav.net.", RecordType::TXT, None),
            &z,
            Transport::Udp,
            now(),
            false,
            || Some(published()),
        );
        assert_eq!(r.outcome, Outcome::Refused);
    }

    #[test]
    fn the_snapshot_is_read_only_for_names_in_our_zones_and_unreadable_is_servfail() {
        let z = zones();
        let r = respond(
            &query("example.com.", RecordType::TXT, None),
            &z,
            Transport::Udp,
            now(),
            false,
            || panic!("read for a refused name"),
        );
        assert_eq!(r.outcome, Outcome::Refused);
        let r = respond(
            &query("current.cvd.mirror.test.", RecordType::TXT, None),
            &z,
            Transport::Udp,
            now(),
            false,
            || None,
        );
        assert_eq!(r.outcome, Outcome::ServFail);
        let m = Message::from_vec(&r.bytes.unwrap()).unwrap();
        assert_eq!(m.response_code(), ResponseCode::ServFail);
        assert!(m.answers().is_empty());
    }

    #[test]
    fn malformed_packets_are_dropped_or_formerr() {
        let z = zones();
        let go = |p: &[u8]| respond(p, &z, Transport::Udp, now(), false, || Some(published()));
        // too short, or an answer rather than a query: nothing sent
        for p in [&b""[..], &[0u8; 11][..]] {
            let r = go(p);
            assert_eq!((r.outcome, r.bytes.is_none()), (Outcome::Dropped, true));
        }
        let mut resp = query("current.cvd.mirror.test.", RecordType::TXT, None);
        resp[2] |= 0x80;
        let r = go(&resp);
        assert_eq!((r.outcome, r.bytes.is_none()), (Outcome::Dropped, true));
        // header only, or a truncated question: FORMERR with the ID
        let good = query("current.cvd.mirror.test.", RecordType::TXT, None);
        for cut in [12, 15, good.len() - 1] {
            let r = go(&good[..cut]);
            assert_eq!(r.outcome, Outcome::FormErr, "cut at {cut}");
            let m = Message::from_vec(&r.bytes.unwrap()).unwrap();
            assert_eq!((m.id(), m.response_code()), (0xbeef, ResponseCode::FormErr));
            assert!(m.queries().is_empty());
        }
        // two questions, an answer section, hostile counts: FORMERR before decoding
        for (at, v) in [(5usize, 2u8), (7, 1), (9, 1), (11, 200), (4, 0xff)] {
            let mut p = good.clone();
            p[at] = v;
            let r = go(&p);
            assert_eq!(r.outcome, Outcome::FormErr, "byte {at} = {v}");
        }
        // a compression loop in the question name
        let mut p = good[..12].to_vec();
        p.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1]);
        assert_eq!(go(&p).outcome, Outcome::FormErr);
        // other opcodes: NOTIMP
        let mut p = good.clone();
        p[2] = (p[2] & 0x87) | (5 << 3); // UPDATE
        let r = go(&p);
        assert_eq!(r.outcome, Outcome::NotImp);
        assert_eq!(
            Message::from_vec(&r.bytes.unwrap())
                .unwrap()
                .response_code(),
            ResponseCode::NotImp
        );
    }

    #[test]
    fn edns_is_echoed_and_other_versions_get_badvers() {
        let (o, m) = ask(
            &query("current.cvd.mirror.test.", RecordType::TXT, Some(4096)),
            Transport::Udp,
        );
        let m = m.unwrap();
        assert_eq!(o, Outcome::Answered);
        let e = m.extensions().as_ref().expect("OPT in the answer");
        assert_eq!((e.version(), e.max_payload()), (0, MAX_UDP_EDNS));
        let (_, m) = ask(
            &query("current.cvd.mirror.test.", RecordType::TXT, None),
            Transport::Udp,
        );
        assert!(
            m.unwrap().extensions().is_none(),
            "no OPT to a query without one"
        );

        let mut q = Message::from_vec(&query(
            "current.cvd.mirror.test.",
            RecordType::TXT,
            Some(1232),
        ))
        .unwrap();
        q.extensions_mut().as_mut().unwrap().set_version(1);
        let (o, m) = ask(&q.to_vec().unwrap(), Transport::Udp);
        let m = m.unwrap();
        assert_eq!(o, Outcome::FormErr);
        // BADVERS is 16 (hickory decodes 16 as its twin BADSIG)
        assert_eq!(u16::from(m.response_code()), 16);
        assert_eq!(m.extensions().as_ref().map(Edns::version), Some(0));
        assert!(m.answers().is_empty());
    }

    #[test]
    fn large_answers_are_truncated_over_udp_only() {
        // 30 custom databases make the record about 900 bytes: more than 512.
        let v: BTreeMap<String, u32> = (0..30)
            .map(|i| (format!("custom-database-{i:02}"), 1_000_000 + i))
            .collect();
        let p = Arc::new(Published::new(&v, 1));
        let z = zones();
        let plain = query("current.cvd.mirror.test.", RecordType::TXT, None);
        let r = respond(&plain, &z, Transport::Udp, now(), false, || Some(p.clone()));
        assert_eq!(r.outcome, Outcome::Truncated);
        let b = r.bytes.unwrap();
        assert!(b.len() <= MAX_UDP_PLAIN);
        let m = Message::from_vec(&b).unwrap();
        assert!(m.truncated() && m.answers().is_empty());
        assert_eq!(m.queries().len(), 1);
        // EDNS with room: the whole record, in 255-byte strings that join back
        let r = respond(
            &query("current.cvd.mirror.test.", RecordType::TXT, Some(4096)),
            &z,
            Transport::Udp,
            now(),
            false,
            || Some(p.clone()),
        );
        assert_eq!(r.outcome, Outcome::Answered);
        let b = r.bytes.unwrap();
        assert!(b.len() > MAX_UDP_PLAIN && b.len() <= usize::from(MAX_UDP_EDNS));
        let m = Message::from_vec(&b).unwrap();
        let RData::TXT(t) = m.answers()[0].data() else {
            panic!()
        };
        assert!(t.txt_data().len() > 1 && t.txt_data().iter().all(|s| s.len() <= 255));
        assert!(
            t.txt_data()[0].starts_with(format!("0.0.0:0:0:{NOW}:0:0:0:0:").as_bytes()),
            "the standard fields are in the first string"
        );
        let r = VersionRecord::parse(&txt_of(&m)).unwrap();
        assert_eq!(r.extra.len(), 30);
        // TCP: never truncated
        let r = respond(&plain, &z, Transport::Tcp, now(), false, || Some(p.clone()));
        assert_eq!(r.outcome, Outcome::Answered);
    }

    #[test]
    fn rate_limited_slip_is_an_empty_truncated_answer() {
        let q = query("current.cvd.mirror.test.", RecordType::TXT, None);
        let r = respond(&q, &zones(), Transport::Udp, now(), true, || {
            panic!("no work for a limited source")
        });
        assert_eq!(r.outcome, Outcome::RateLimited);
        let b = r.bytes.unwrap();
        assert!(b.len() <= q.len(), "never larger than the query");
        let m = Message::from_vec(&b).unwrap();
        assert!(m.truncated() && m.answers().is_empty());
    }

    proptest! {
        #[test]
        fn any_name_and_type_gets_a_well_formed_answer(
            labels in proptest::collection::vec("[a-zA-Z0-9*_-]{1,12}", 0..5),
            suffix in prop::sample::select(vec!["current.cvd.mirror.test.", "cvd.clamav.net.", "clamav.net.", "example.org.", "."]),
            t in any::<u16>(),
            edns in proptest::option::of(0u16..=65535),
            tcp in any::<bool>(),
        ) {
            let name = format!("{}{}{}", labels.join("."), if labels.is_empty() || suffix == "." { "" } else { "." }, suffix);
            let name = if name.is_empty() { ".".to_owned() } else { name };
            let Ok(n) = Name::from_ascii(&name) else { return Ok(()) };
            let mut m = Message::new();
            m.set_id(7);
            m.add_query(Query::query(n.clone(), RecordType::from(t)));
            if let Some(size) = edns {
                let mut e = Edns::new();
                e.set_max_payload(size);
                m.set_edns(e);
            }
            let Ok(p) = m.to_vec() else { return Ok(()) };
            let t = if tcp { Transport::Tcp } else { Transport::Udp };
            let r = respond(&p, &zones(), t, now(), false, || Some(published()));
            let b = r.bytes.expect("every well-formed query is answered");
            let a = Message::from_vec(&b).unwrap();
            prop_assert_eq!(a.id(), 7);
            prop_assert!(!a.recursion_available());
            prop_assert!(b.len() <= MAX_UDP_PLAIN.max(usize::from(MAX_UDP_EDNS)));
            let in_zone = Name::from_ascii("current.cvd.mirror.test.").unwrap().zone_of(&n)
                || Name::from_ascii("cvd.clamav.net.").unwrap().zone_of(&n);
            prop_assert_eq!(a.authoritative(), in_zone);
            prop_assert_eq!(r.outcome == Outcome::Refused, !in_zone);
            for rec in a.answers() {
                prop_assert!(rec.name().to_lowercase() == n.to_lowercase());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_answers_decode(p in proptest::collection::vec(any::<u8>(), 0..300)) {
            for t in [Transport::Udp, Transport::Tcp] {
                let r = respond(&p, &zones(), t, now(), false, || Some(published()));
                if let Some(b) = r.bytes {
                    let m = Message::from_vec(&b).unwrap();
                    prop_assert_eq!(&b[..2], &p[..2]);
                    prop_assert_eq!(m.message_type(), MessageType::Response);
                }
            }
        }
    }
}
