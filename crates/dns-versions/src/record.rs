//! The version TXT record: typed, parsed with `nom`, every field validated.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nom::Parser;
use nom::bytes::complete::take_while;
use nom::character::complete::char;
use nom::combinator::all_consuming;
use nom::multi::separated_list1;

use crate::Error;

/// The official version record's name.
pub const DEFAULT_NAME: &str = "current.cvd.clamav.net";

/// A record older than this is stale (the reference client's rule).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The longest record accepted (the official one is about 45 bytes; extensions add a
/// few bytes per custom database).
pub const MAX_RECORD_LEN: usize = 4096;

/// The most `name=version` extension fields accepted.
pub const MAX_EXTRA: usize = 128;

/// Names of the standard fields, by position.
const FIELD_NAMES: [&str; 8] = [
    "engine version",
    "main version",
    "daily version",
    "record time",
    "version-warning flag",
    "functionality level",
    "safebrowsing version",
    "bytecode version",
];

/// The version record published as DNS TXT at `current.cvd.clamav.net` (spec §4), or
/// as a mirror's `dns.txt` manifest.
///
/// Format: eight `:`-separated fields
/// `engine:main:daily:time:warning:flevel:safebrowsing:bytecode`, e.g.
/// `1.4.3:62:27466:1733000000:1:90:49191:335`.
///
/// **Extension for custom databases** (written by our mirrors, ignored by the
/// reference client, which reads fields by position): after the eight standard
/// fields, any number of `name=version` fields, e.g.
/// `1.4.3:62:27466:1733000000:0:90:0:335:mydb=12:other=3`. Names are 1–64 characters
/// of `a-z`, `0-9`, `_`, `-`, distinct, and never one of the standard databases
/// (`main`, `daily`, `bytecode`, `safebrowsing`).
///
/// ```
/// use dns_versions::VersionRecord;
/// let r = VersionRecord::parse("1.4.3:62:27466:1733000000:1:90:49191:335:mydb=12")?;
/// assert_eq!((r.main, r.daily, r.bytecode), (62, 27466, 335));
/// assert_eq!(r.version_of("mydb"), Some(12));
/// assert_eq!(r.to_string(), "1.4.3:62:27466:1733000000:1:90:49191:335:mydb=12");
/// assert!(VersionRecord::parse("1.4.3:62::1733000000:1:90:49191:335").is_err());
/// # Ok::<(), dns_versions::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Field 0: the newest ClamAV engine version, e.g. `1.4.3`.
    pub engine: String,
    /// Field 1: `main` version.
    pub main: u32,
    /// Field 2: `daily` version.
    pub daily: u32,
    /// Field 3: when the record was made, Unix seconds.
    pub time: u64,
    /// Field 4: the version-warning flag.
    pub version_warning: bool,
    /// Field 5: recommended functionality level.
    pub flevel: u32,
    /// Field 6: `safebrowsing` version (obsolete upstream; `0` when not mirrored).
    pub safebrowsing: u32,
    /// Field 7: `bytecode` version.
    pub bytecode: u32,
    /// Extension fields: custom database name → version.
    pub extra: BTreeMap<String, u32>,
}

fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn is_std_db(name: &str) -> bool {
    matches!(name, "main" | "daily" | "bytecode" | "safebrowsing")
}

/// Whether `name` is acceptable as a custom database name in the extension.
pub(crate) fn valid_extra_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !is_std_db(name)
}

fn valid_engine(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_' | b'~'))
}

/// Splits into `:`-separated fields (empty fields kept, so they can be reported).
fn fields(input: &str) -> Option<Vec<&str>> {
    let mut p = all_consuming(separated_list1(
        char::<&str, nom::error::Error<&str>>(':'),
        take_while(|c| c != ':'),
    ));
    p.parse(input).ok().map(|(_, v)| v)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{:?} is not a decimal number", excerpt(s)));
    }
    s.parse()
        .map_err(|_| format!("{:?} is out of range", excerpt(s)))
}

impl VersionRecord {
    /// A record with the given versions made at `time`, engine `0.0.0`, no warning,
    /// flevel 0 and no extensions (what a mirror publishes for its own snapshot).
    pub fn new(time: SystemTime, main: u32, daily: u32, bytecode: u32) -> VersionRecord {
        VersionRecord {
            engine: "0.0.0".into(),
            main,
            daily,
            time: time
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            version_warning: false,
            flevel: 0,
            safebrowsing: 0,
            bytecode,
            extra: BTreeMap::new(),
        }
    }

    /// Parses a record. Surrounding whitespace (a trailing newline in `dns.txt`) is
    /// ignored; anything else must be exactly the format above.
    ///
    /// # Errors
    /// [`Error::Field`] naming the field for a missing, empty, non-numeric or
    /// out-of-range field; [`Error::Record`] for an over-long record or a bad extension.
    pub fn parse(input: &str) -> Result<VersionRecord, Error> {
        let s = input.trim();
        let rec_err = |reason: String| Error::Record {
            record: excerpt(s),
            reason,
        };
        if s.len() > MAX_RECORD_LEN {
            return Err(rec_err(format!("longer than {MAX_RECORD_LEN} bytes")));
        }
        if s.is_empty() {
            return Err(rec_err("empty".into()));
        }
        let f = fields(s).ok_or_else(|| rec_err("cannot split into fields".into()))?;
        if f.len() > 8 + MAX_EXTRA {
            return Err(rec_err(format!("more than {MAX_EXTRA} extension fields")));
        }
        let field_err = |i: usize, reason: String| Error::Field {
            record: excerpt(s),
            field: i,
            name: FIELD_NAMES[i],
            reason,
        };
        let get = |i: usize| -> Result<&str, Error> {
            f.get(i)
                .copied()
                .ok_or_else(|| field_err(i, "missing".into()))
        };
        let num32 =
            |i: usize| -> Result<u32, Error> { number(get(i)?).map_err(|r| field_err(i, r)) };

        let engine = get(0)?;
        if !valid_engine(engine) {
            return Err(field_err(
                0,
                format!("{:?} is not a version string", excerpt(engine)),
            ));
        }
        let main = num32(1)?;
        let daily = num32(2)?;
        let time: u64 = number(get(3)?).map_err(|r| field_err(3, r))?;
        let version_warning = match get(4)? {
            "0" => false,
            "1" => true,
            other => return Err(field_err(4, format!("{:?} is not 0 or 1", excerpt(other)))),
        };
        let flevel = num32(5)?;
        let safebrowsing = num32(6)?;
        let bytecode = num32(7)?;
        let mut extra = BTreeMap::new();
        for (i, x) in f.iter().enumerate().skip(8) {
            let (name, v) = x.split_once('=').ok_or_else(|| {
                rec_err(format!(
                    "extension field {i} {:?} is not name=version",
                    excerpt(x)
                ))
            })?;
            if !valid_extra_name(name) {
                return Err(rec_err(format!(
                    "extension field {i}: {:?} is not a valid custom database name",
                    excerpt(name)
                )));
            }
            let v: u32 =
                number(v).map_err(|r| rec_err(format!("extension field {i} ({name}): {r}")))?;
            if extra.insert(name.to_string(), v).is_some() {
                return Err(rec_err(format!(
                    "extension field {i}: duplicate database {name:?}"
                )));
            }
        }
        Ok(VersionRecord {
            engine: engine.to_string(),
            main,
            daily,
            time,
            version_warning,
            flevel,
            safebrowsing,
            bytecode,
            extra,
        })
    }

    /// The version of database `db` (`main`, `daily`, `bytecode`, `safebrowsing`, or a
    /// custom name from the extension).
    pub fn version_of(&self, db: &str) -> Option<u32> {
        match db {
            "main" => Some(self.main),
            "daily" => Some(self.daily),
            "bytecode" => Some(self.bytecode),
            "safebrowsing" => Some(self.safebrowsing),
            other => self.extra.get(other).copied(),
        }
    }

    /// Sets the version of database `db` (standard or custom).
    ///
    /// # Errors
    /// [`Error::Record`] when `db` is not a valid custom database name, or the
    /// extension would exceed [`MAX_EXTRA`] entries.
    pub fn set_version(&mut self, db: &str, version: u32) -> Result<(), Error> {
        match db {
            "main" => self.main = version,
            "daily" => self.daily = version,
            "bytecode" => self.bytecode = version,
            "safebrowsing" => self.safebrowsing = version,
            other if valid_extra_name(other) => {
                if !self.extra.contains_key(other) && self.extra.len() >= MAX_EXTRA {
                    return Err(Error::Record {
                        record: excerpt(&self.to_string()),
                        reason: format!("more than {MAX_EXTRA} custom databases"),
                    });
                }
                self.extra.insert(other.to_string(), version);
            }
            other => {
                return Err(Error::Record {
                    record: excerpt(&self.to_string()),
                    reason: format!("{:?} is not a valid database name", excerpt(other)),
                });
            }
        }
        Ok(())
    }

    /// When the record was made.
    pub fn made_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.time)
    }

    /// The record's age at `now` (zero for a record from the future: clock skew).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.made_at()).unwrap_or(Duration::ZERO)
    }

    /// Whether the record is older than `max_age` at `now` (use [`DEFAULT_MAX_AGE`]);
    /// a stale record must not make a mirror believe nothing changed.
    pub fn is_stale(&self, now: SystemTime, max_age: Duration) -> bool {
        self.age(now) > max_age
    }
}

impl fmt::Display for VersionRecord {
    /// The record in its wire format (what [`VersionRecord::parse`] reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}:{}:{}:{}",
            self.engine,
            self.main,
            self.daily,
            self.time,
            u8::from(self.version_warning),
            self.flevel,
            self.safebrowsing,
            self.bytecode
        )?;
        for (k, v) in &self.extra {
            write!(f, ":{k}={v}")?;
        }
        Ok(())
    }
}

/// The per-database record that libfreshclam reads at `<db>.cvd.clamav.net` for a
/// database that the main record does not list (any name other than `main`, `daily`,
/// `safebrowsing` and `bytecode`; the domain is hard-coded in the client).
///
/// Format: `version:time`. Field 0 is the database version and field 1 the record time
/// in Unix seconds. The client ignores a record older than 12 hours
/// ([`DEFAULT_MAX_AGE`]). These are the only fields the reference client reads, and
/// the only ones this parser accepts. Our DNS server writes this format.
///
/// ```
/// use dns_versions::DatabaseRecord;
/// let r = DatabaseRecord::parse("6:1733000000")?;
/// assert_eq!((r.version, r.time), (6, 1_733_000_000));
/// assert_eq!(r.to_string(), "6:1733000000");
/// assert!(DatabaseRecord::parse("6").is_err());
/// assert!(DatabaseRecord::parse("x:1733000000").is_err());
/// # Ok::<(), dns_versions::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseRecord {
    /// Field 0: the database version.
    pub version: u32,
    /// Field 1: when the record was made, Unix seconds.
    pub time: u64,
}

impl DatabaseRecord {
    /// A record for `version` made at `time`.
    pub fn new(version: u32, time: SystemTime) -> DatabaseRecord {
        DatabaseRecord {
            version,
            time: time
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Parses a record. Surrounding whitespace is ignored; anything else must be
    /// exactly `version:time`.
    ///
    /// # Errors
    /// [`Error::Record`] naming the field that is missing, empty, non-numeric or out of
    /// range, or saying that there are more than two fields.
    pub fn parse(input: &str) -> Result<DatabaseRecord, Error> {
        let s = input.trim();
        let err = |reason: String| Error::Record {
            record: excerpt(s),
            reason,
        };
        if s.len() > 64 {
            return Err(err("longer than 64 bytes".into()));
        }
        let f = fields(s).ok_or_else(|| err("cannot split into fields".into()))?;
        if f.len() != 2 {
            return Err(err(format!(
                "{} fields, expected 2 (version:time)",
                f.len()
            )));
        }
        let version = number(f[0]).map_err(|r| err(format!("field 0 (version): {r}")))?;
        let time = number(f[1]).map_err(|r| err(format!("field 1 (record time): {r}")))?;
        Ok(DatabaseRecord { version, time })
    }

    /// When the record was made.
    pub fn made_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.time)
    }

    /// Whether the record is older than `max_age` at `now` (the client's rule, with
    /// [`DEFAULT_MAX_AGE`]).
    pub fn is_stale(&self, now: SystemTime, max_age: Duration) -> bool {
        now.duration_since(self.made_at()).unwrap_or(Duration::ZERO) > max_age
    }
}

impl fmt::Display for DatabaseRecord {
    /// The record in its wire format (what [`DatabaseRecord::parse`] reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.version, self.time)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    #[test]
    fn official_record_parses() {
        let r = VersionRecord::parse("0.103.12:62:27466:1733000000:1:90:49191:335\n").unwrap();
        assert_eq!(r.engine, "0.103.12");
        assert_eq!(r.main, 62);
        assert_eq!(r.daily, 27466);
        assert_eq!(r.time, 1_733_000_000);
        assert!(r.version_warning);
        assert_eq!(r.flevel, 90);
        assert_eq!(r.safebrowsing, 49191);
        assert_eq!(r.bytecode, 335);
        assert!(r.extra.is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        let good = [
            "1.4.3",
            "62",
            "27466",
            "1733000000",
            "1",
            "90",
            "49191",
            "335",
        ];
        for i in 0..8 {
            for bad in ["", "x", "-1", "+1", " 1", "99999999999999999999999"] {
                if i == 0 && !bad.is_empty() {
                    continue; // plausible engine strings, or whitespace around the record
                }
                let mut f = good;
                f[i] = bad;
                let e = VersionRecord::parse(&f.join(":")).unwrap_err();
                match e {
                    Error::Field { field, .. } => assert_eq!(field, i, "{f:?}"),
                    other => panic!("{f:?}: {other}"),
                }
            }
            let missing = good[..i].join(":");
            assert!(VersionRecord::parse(&missing).is_err(), "{missing:?}");
        }
        let e = VersionRecord::parse("1 .4:62:27466:1733000000:1:90:49191:335").unwrap_err();
        assert!(matches!(e, Error::Field { field: 0, .. }), "{e}");
        let e = VersionRecord::parse("1.4.3:62:27466:1733000000:2:90:49191:335").unwrap_err();
        assert!(e.to_string().contains("version-warning flag"), "{e}");
    }

    #[test]
    fn extensions() {
        let base = "1.4.3:62:27466:1733000000:0:90:0:335";
        for bad in [
            ":x", ":=1", ":daily=3", ":Ab=1", ":a=1:a=2", ":a=", ":a=x", ":",
        ] {
            assert!(
                VersionRecord::parse(&format!("{base}{bad}")).is_err(),
                "{bad}"
            );
        }
        let mut r = VersionRecord::parse(base).unwrap();
        r.set_version("zeta", 2).unwrap();
        r.set_version("alpha-1", 9).unwrap();
        r.set_version("daily", 27467).unwrap();
        assert!(r.set_version("Bad Name", 1).is_err());
        let s = r.to_string();
        assert_eq!(s, "1.4.3:62:27467:1733000000:0:90:0:335:alpha-1=9:zeta=2");
        assert_eq!(VersionRecord::parse(&s).unwrap(), r);
    }

    #[test]
    fn age_and_staleness() {
        let r = VersionRecord::parse("1.4.3:62:27466:1000000:0:90:0:335").unwrap();
        let made = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(r.made_at(), made);
        let h = Duration::from_secs(3600);
        assert!(!r.is_stale(made + 12 * h, DEFAULT_MAX_AGE));
        assert!(r.is_stale(made + 12 * h + Duration::from_secs(1), DEFAULT_MAX_AGE));
        assert_eq!(r.age(made - h), Duration::ZERO);
        assert!(!r.is_stale(made - h, DEFAULT_MAX_AGE));
    }
}
