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
