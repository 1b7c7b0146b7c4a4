//! Worst cases per parser: for every parser and verifier that takes outside input, the
//! input that maximises its work within its limits, timed next to a typical input of
//! about the same size, in the same run.
//!
//! Run: `cargo bench -p mirror-benches --bench worst_case` (or, faster to build,
//! `cargo bench --profile dev -p mirror-benches --bench worst_case`). Prints one table
//! row per parser; asserts nothing about time. Each time is the best of several runs
//! (at least 3, more while the total stays under ~0.3 s).
//!
//! The `ratio` column is worst / typical **per input byte** (the same as the plain
//! ratio when both inputs have the same size). Where a format's limit is tiny (a DNS
//! query, a TXT record, a push notice) the typical input is the real-world one and
//! smaller; the per-byte ratio is then the fair comparison. The crate docs
//! ("Worst cases" sections) hold the numbers of one run and explain each row.
//!
//! The `.sign` row runs on a helper thread with a 60 s deadline: without a budget on
//! the certificate path search the looping-certificates file takes hours, and the row
//! then says so instead of hanging the benchmark. With the bounded search (copies of
//! one CA with one key are one issuer; at most 100 signature checks per line) it is
//! refused in about the time a good file takes to verify.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Cursor;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cvd_format::sign::{SignFile, SignRoots, SignVerifier};
use cvd_format::{CvdBuilder, VerifyOptions};
use mirror_benches::{Rng, signature_line};

/// One table row.
struct Row {
    parser: &'static str,
    worst: String,
    worst_bytes: usize,
    worst_time: Duration,
    typical: String,
    typical_bytes: usize,
    typical_time: Duration,
}

impl Row {
    fn ratio(&self) -> f64 {
        let per_byte = |t: Duration, b: usize| t.as_secs_f64() / b.max(1) as f64;
        per_byte(self.worst_time, self.worst_bytes)
            / per_byte(self.typical_time, self.typical_bytes).max(f64::MIN_POSITIVE)
    }
}

/// Best time of `f` over at least 3 runs, more while the total stays under 0.3 s.
fn best(mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_millis(300) && runs < 1000) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn fmt_bytes(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// Signature-like text of at least `bytes` bytes.
fn sig_text(bytes: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(bytes + 100);
    let mut line = Vec::new();
    let mut n = 0;
    while out.len() < bytes {
        signature_line(&mut line, &mut rng, "Typical", n);
        out.extend_from_slice(&line);
        n += 1;
    }
    out
}

fn signed_cvd(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut b = CvdBuilder::new("bench", 7).limits(cvd_format::Limits::default());
    for (name, data) in members {
        b = b.member(name, data.clone());
    }
    let mut out = Cursor::new(Vec::new());
    b.write_cvd(&mut out, &testkit::keys::test_signing_keys())?;
    Ok(out.into_inner())
}

/// `.cvd`: 10 000 (the default `max_members`) empty members, all listed in a
/// 10 000-entry `.info`, vs one member of signature text of the same unpacked size.
fn cvd_container(rows: &mut Vec<Row>) -> Result<()> {
    let limits = cvd_format::Limits::default();
    let n = limits.max_members - 2; // + COPYING + bench.info
    let worst_members: Vec<(String, Vec<u8>)> =
        std::iter::once(("COPYING".into(), b"c\n".to_vec()))
            .chain((0..n).map(|i| (format!("m{i}.hdb"), Vec::new())))
            .collect();
    let worst = signed_cvd(&worst_members)?;
    // Unpacked: a 512-byte tar header per member plus the `.info` lines (~90 bytes).
    let unpacked = n * (512 + 90);
    let typical = signed_cvd(&[
        ("COPYING".into(), b"c\n".to_vec()),
        ("bench.hdb".into(), sig_text(unpacked, 1)),
    ])?;
    let opts = VerifyOptions::new().keys(testkit::keys::test_key_set());
    cvd_format::verify_reader(worst.as_slice(), &opts).context("worst .cvd")?;
    cvd_format::verify_reader(typical.as_slice(), &opts).context("typical .cvd")?;
    rows.push(Row {
        parser: "cvd container (verify_reader)",
        worst: format!(
            "{n} empty members + {n}-entry .info, ~{} unpacked",
            fmt_bytes(unpacked)
        ),
        worst_bytes: unpacked,
        worst_time: best(|| {
            let _ = cvd_format::verify_reader(worst.as_slice(), &opts);
        }),
        typical: "1 member of signature text, same unpacked size".into(),
        typical_bytes: unpacked,
        typical_time: best(|| {
            let _ = cvd_format::verify_reader(typical.as_slice(), &opts);
        }),
    });
    Ok(())
}

/// `.info`: `MAX_ENTRIES` (100 000) entries with the shortest names vs fewer entries
/// with real-length names, same bytes.
fn info(rows: &mut Vec<Row>) -> Result<()> {
    let head = "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:micasnyd:1624412045\n";
    let sha = "0748b843a1cea3242d70531083b84f877d8de398cfefe65509b5d3bb1e3bcb57";
    let mut worst = head.to_string();
    for i in 0..cvd_format::info::MAX_ENTRIES {
        let _ = writeln!(worst, "{i:x}:0:{sha}");
    }
    let mut typical = head.to_string();
    let mut i = 0;
    while typical.len() < worst.len() {
        let _ = writeln!(
            typical,
            "daily-signature-file-with-a-long-name-{i}.ldb:1234567:{sha}"
        );
        i += 1;
    }
    cvd_format::Info::parse("w.info", worst.as_bytes()).context("worst .info")?;
    cvd_format::Info::parse("t.info", typical.as_bytes()).context("typical .info")?;
    rows.push(Row {
        parser: ".info",
        worst: format!("{} entries, shortest names", cvd_format::info::MAX_ENTRIES),
        worst_bytes: worst.len(),
        worst_time: best(|| {
            let _ = cvd_format::Info::parse("w.info", worst.as_bytes());
        }),
        typical: format!("{i} entries with 45-byte names"),
        typical_bytes: typical.len(),
        typical_time: best(|| {
            let _ = cvd_format::Info::parse("t.info", typical.as_bytes());
        }),
    });
    Ok(())
}

/// Legacy and PSS signatures: fixed-size inputs, one RSA operation each. Worst: a
/// signature that decodes but does not verify (all the work, then an error).
fn signatures(rows: &mut Vec<Row>) -> Result<()> {
    let keys = testkit::keys::test_signing_keys();
    let public = testkit::keys::test_key_set();
    let md5 = [7u8; 16];
    let good = cvd_format::legacy::sign_md5(&keys.cvd, &md5)?;
    let bad = cvd_format::legacy::sign_md5(&keys.cvd, &[8u8; 16])?;
    cvd_format::legacy::verify_dsig(&public.cvd, &good, &md5).context("legacy")?;
    rows.push(Row {
        parser: "legacy CVD signature",
        worst: "valid encoding, wrong MD5".into(),
        worst_bytes: bad.len(),
        worst_time: best(|| {
            let _ = cvd_format::legacy::verify_dsig(&public.cvd, &bad, &md5);
        }),
        typical: "good signature".into(),
        typical_bytes: good.len(),
        typical_time: best(|| {
            let _ = cvd_format::legacy::verify_dsig(&public.cvd, &good, &md5);
        }),
    });
    let digest = [9u8; 32];
    let good = cvd_format::versig2::sign(&keys.info, &digest)?;
    let bad = cvd_format::versig2::sign(&keys.info, &[1u8; 32])?;
    cvd_format::versig2::verify(&public.info, &digest, &good).context("pss")?;
    rows.push(Row {
        parser: "PSS signature (versig2)",
        worst: "valid encoding, wrong digest".into(),
        worst_bytes: bad.len(),
        worst_time: best(|| {
            let _ = cvd_format::versig2::verify(&public.info, &digest, &bad);
        }),
        typical: "good signature".into(),
        typical_bytes: good.len(),
        typical_time: best(|| {
            let _ = cvd_format::versig2::verify(&public.info, &digest, &good);
        }),
    });
    Ok(())
}

/// `.sign`: 3 lines of 15 same-subject, same-key CA certificates + leaf (under the
/// 64 KiB download limit) against unrelated roots (no path) vs the same file with
/// one loop CA trusted (found at once). Made with `cvd_format::fuzzing::pki`.
fn sign(rows: &mut Vec<Row>) -> Result<()> {
    use cvd_format::fuzzing::pki::{self, Kit, VERIFY_AT};
    const LOOP_CONTENT: &[u8] = b"content signed by the looping-certificates .sign file\n";
    let kit = Kit::generate(2, 2048).map_err(anyhow::Error::msg)?;
    let (leaf, cas) = kit.looping_chain(15, 0, 1).map_err(anyhow::Error::msg)?;
    let trusted_pem = pki::pem(&cas[0]).map_err(anyhow::Error::msg)?;
    let mut certs = cas;
    certs.insert(0, leaf.clone());
    let der = kit
        .sign_cms(LOOP_CONTENT, &leaf, 1, &certs)
        .map_err(anyhow::Error::msg)?;
    let looping_file = pki::sign_file(&[der.clone(), der.clone(), der]);
    let at = time::OffsetDateTime::from_unix_timestamp(VERIFY_AT)?;
    let file = SignFile::parse(&looping_file)?;
    let typical = SignVerifier::new()
        .roots(SignRoots::from_pem(&trusted_pem)?)
        .at(at);
    typical
        .verify(&file, LOOP_CONTENT)
        .context("the looping file with its CA trusted")?;
    let typical_time = best(|| {
        let _ = typical.verify(&file, LOOP_CONTENT);
    });
    let worst_file = file.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let verifier = SignVerifier::new().at(at);
        let t = Instant::now();
        let r = verifier.verify(&worst_file, LOOP_CONTENT);
        let _ = tx.send((t.elapsed(), r.map(|_| ()).map_err(|e| e.to_string())));
    });
    let deadline = Duration::from_secs(60);
    let (worst_time, worst) = match rx.recv_timeout(deadline) {
        Ok((t, Err(e))) => {
            println!(".sign worst case refused with: {e}");
            (
                t,
                "3 looping lines (15 same-key CAs + leaf), default roots: refused".into(),
            )
        }
        Ok((_, Ok(()))) => bail!("the looping .sign file verified against the default roots"),
        Err(_) => (
            deadline,
            "3 looping lines, default roots: NOT FINISHED after 60 s (no search budget)".into(),
        ),
    };
    rows.push(Row {
        parser: ".sign (CMS + X.509 path)",
        worst,
        worst_bytes: looping_file.len(),
        worst_time,
        typical: "same file, a loop CA trusted".into(),
        typical_bytes: looping_file.len(),
        typical_time,
    });
    Ok(())
}

/// cdiff scripts: the most lines (6-byte `CLOSE`) vs signature `ADD` lines, 4 MiB each;
/// apply: 16 (the limit) whole-file rewrites of a 1 MiB file vs one pass with the
/// same 16 edits.
fn cdiff_rows(rows: &mut Vec<Row>) -> Result<()> {
    let limits = cdiff::Limits::default();
    let size = 4 << 20;
    let worst: Vec<u8> = b"CLOSE\n".repeat(size / 6);
    let mut typical = b"OPEN bench.hdb\n".to_vec();
    for line in sig_text(size - 30, 2).split(|&b| b == b'\n') {
        if !line.is_empty() {
            typical.extend_from_slice(b"ADD ");
            typical.extend_from_slice(line);
            typical.push(b'\n');
        }
    }
    typical.extend_from_slice(b"CLOSE\n");
    cdiff::Script::parse_with_limits(&worst, &limits).context("worst script")?;
    cdiff::Script::parse_with_limits(&typical, &limits).context("typical script")?;
    rows.push(Row {
        parser: "cdiff script parse",
        worst: format!("{} one-word lines", size / 6),
        worst_bytes: worst.len(),
        worst_time: best(|| {
            let _ = cdiff::Script::parse_with_limits(&worst, &limits);
        }),
        typical: "ADD lines of signatures".into(),
        typical_bytes: typical.len(),
        typical_time: best(|| {
            let _ = cdiff::Script::parse_with_limits(&typical, &limits);
        }),
    });

    let file = sig_text(1 << 20, 3);
    let lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
    let mut db = cdiff::Database::new();
    db.insert("bench.hdb", file.clone());
    let rewrites = limits.max_rewrites_per_file;
    let step = lines.len() / (rewrites + 1);
    let (mut worst, mut typical) = (String::new(), String::from("OPEN bench.hdb\n"));
    for k in 0..rewrites {
        // Line numbers of the original file; each DEL shifts later lines up by one.
        let n = (k + 1) * step;
        let prefix = String::from_utf8_lossy(&lines[n - 1][..8]).into_owned();
        let _ = write!(worst, "OPEN bench.hdb\nDEL {} {prefix}\nCLOSE\n", n - k);
        let _ = writeln!(typical, "DEL {n} {prefix}");
    }
    typical.push_str("CLOSE\n");
    let worst = cdiff::Script::parse(worst.as_bytes())?;
    let typical_script = cdiff::Script::parse(typical.as_bytes())?;
    let (mut a, mut b) = (db.clone(), db.clone());
    a.apply_with_limits(&worst, &limits)
        .context("worst apply")?;
    b.apply_with_limits(&typical_script, &limits)
        .context("typical apply")?;
    if a != b {
        bail!("the two cdiff scripts disagree");
    }
    rows.push(Row {
        parser: "cdiff apply",
        worst: format!("{rewrites} OPEN/DEL/CLOSE blocks on a 1 MiB file (the rewrite limit)"),
        worst_bytes: 1 << 20,
        worst_time: best(|| {
            let mut d = db.clone();
            let _ = d.apply_with_limits(&worst, &limits);
        }),
        typical: format!("one OPEN with the same {rewrites} DELs"),
        typical_bytes: 1 << 20,
        typical_time: best(|| {
            let mut d = db.clone();
            let _ = d.apply_with_limits(&typical_script, &limits);
        }),
    });
    Ok(())
}

/// The TXT record / `dns.txt`: 4096 bytes (`MAX_RECORD_LEN`) with 128 extension
/// fields (`MAX_EXTRA`), vs the official record (8 fields).
fn txt_record(rows: &mut Vec<Row>) -> Result<()> {
    let mut worst = "1.4.3:62:27850:1764000000:1:90:7:339".to_string();
    for i in 0..dns_versions::MAX_EXTRA {
        let _ = write!(worst, ":x{i:0>16}=4294967295");
    }
    while worst.len() > dns_versions::MAX_RECORD_LEN {
        worst.pop();
    }
    // Keep it valid: cut back to a whole field.
    if let Some(cut) = worst.rfind(':') {
        worst.truncate(cut);
    }
    let typical = "1.4.3:62:27850:1764000000:1:90:7:339";
    dns_versions::VersionRecord::parse(&worst).context("worst record")?;
    dns_versions::VersionRecord::parse(typical).context("typical record")?;
    rows.push(Row {
        parser: "TXT record / dns.txt",
        worst: format!(
            "{} bytes, {} extension fields",
            worst.len(),
            worst.matches('=').count()
        ),
        worst_bytes: worst.len(),
        worst_time: best(|| {
            let _ = dns_versions::parse_manifest(worst.as_bytes());
        }),
        typical: "the official 8-field record".into(),
        typical_bytes: typical.len(),
        typical_time: best(|| {
            let _ = dns_versions::parse_manifest(typical.as_bytes());
        }),
    });
    Ok(())
}

/// DNS: a query whose name is 127 one-byte labels (255 bytes, the name limit) with 4
/// additional records (`MAX_ADDITIONAL`) whose names are compression pointers to it,
/// vs an ordinary EDNS query for the version name.
fn dns(rows: &mut Vec<Row>) {
    let mut worst = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 4];
    for _ in 0..127 {
        worst.extend_from_slice(b"\x01a");
    }
    worst.push(0);
    worst.extend_from_slice(&[0, 16, 0, 1]); // TXT IN
    for _ in 0..3 {
        // name = pointer to the question name (offset 12), A IN, TTL, 4 bytes
        worst.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    worst.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]); // OPT
    let mut typical = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in ["current", "cvd", "mirror", "test"] {
        typical.push(label.len() as u8);
        typical.extend_from_slice(label.as_bytes());
    }
    typical.push(0);
    typical.extend_from_slice(&[0, 16, 0, 1]);
    typical.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    rows.push(Row {
        parser: "DNS query (sigserver)",
        worst: "255-byte name (127 labels) + 4 additional via pointers".into(),
        worst_bytes: worst.len(),
        worst_time: best(|| sigserver::fuzzing::dns_packet(&worst)),
        typical: "EDNS TXT query for the version name".into(),
        typical_bytes: typical.len(),
        typical_time: best(|| sigserver::fuzzing::dns_packet(&typical)),
    });
}

/// HTTP/1 request heads: 99 tiny header fields (under `MAX_HEADERS`) vs a request with
/// one long `User-Agent`, same size, each answered on an in-memory connection (the
/// fuzzing harness: head limit 1 KiB). The other worst case, a head trickled in one
/// byte per read, is measured by a work-counting unit test in `http-head`.
fn h1(rows: &mut Vec<Row>) {
    // 98 fields + Host = 99, one under MAX_HEADERS, each line 9 bytes.
    let mut worst = b"GET /test.cvd HTTP/1.1\r\nHost: m\r\n".to_vec();
    for i in 0..98 {
        worst.extend_from_slice(format!("X{i:0>2}:vvv\r\n").as_bytes());
    }
    worst.extend_from_slice(b"\r\n");
    let mut typical = b"GET /test.cvd HTTP/1.1\r\nHost: m\r\nUser-Agent: ".to_vec();
    typical.resize(worst.len() - 4, b'a');
    typical.extend_from_slice(b"\r\n\r\n");
    rows.push(Row {
        parser: "HTTP/1 request head (sigserver)",
        worst: format!(
            "{} bytes, 99 header fields (MAX_HEADERS = 100)",
            worst.len()
        ),
        worst_bytes: worst.len(),
        worst_time: best(|| sigserver::fuzzing::h1_connection(&worst)),
        typical: "GET with one long User-Agent, same size".into(),
        typical_bytes: typical.len(),
        typical_time: best(|| sigserver::fuzzing::h1_connection(&typical)),
    });
}

/// Push notices: 16 KiB (`MAX_NOTICE_LEN`) of tiny hop objects (all parsed before the
/// hop count is refused) vs a full valid notice (64 databases, 32 hops).
fn notice(rows: &mut Vec<Row>) -> Result<()> {
    let max = push::notice::MAX_NOTICE_LEN;
    let mut worst =
        r#"{"format":1,"id":"a","origin":"o","sent_ms":1,"databases":{"daily":1},"hops":["#
            .to_string();
    while worst.len() + 2 * 33 < max {
        worst.push_str(r#"{"mirror":"m","published_ms":1},"#);
    }
    worst.push_str(r#"{"mirror":"m","published_ms":1}]}"#);
    let databases: BTreeMap<String, u32> = (0..push::notice::MAX_DATABASES)
        .map(|i| (format!("db{i:0>40}"), 27_000))
        .collect();
    let hops = (0..mirror_core::trace::MAX_HOPS - 1)
        .map(|i| mirror_core::trace::Hop {
            mirror: format!("mirror-{i}.example"),
            published_ms: 1_764_000_000_000,
        })
        .collect();
    let typical =
        push::notice::Notice::new("sender", None, databases, hops, 1_764_000_000_000, 1).to_bytes();
    push::notice::Notice::parse(&typical).context("typical notice")?;
    if worst.len() > max || push::notice::Notice::parse(worst.as_bytes()).is_ok() {
        bail!("the worst notice must be within the size limit and refused for its hops");
    }
    rows.push(Row {
        parser: "push notice (JSON)",
        worst: format!("{} bytes of tiny hop objects", worst.len()),
        worst_bytes: worst.len(),
        worst_time: best(|| {
            let _ = push::notice::Notice::parse(worst.as_bytes());
        }),
        typical: "valid notice: 64 databases, 32 hops".into(),
        typical_bytes: typical.len(),
        typical_time: best(|| {
            let _ = push::notice::Notice::parse(&typical);
        }),
    });
    Ok(())
}

/// JSON state files (`status.json`; `.trace.json` and `.trust.json` use the same
/// reader): 4 MiB of a string made of `\u` escapes vs a status with many databases
/// and cdiff lists, same size.
fn status_json(rows: &mut Vec<Row>) -> Result<()> {
    use mirror_core::status::{DatabaseStatus, MirrorStatus};
    let size = 4 << 20;
    let mut worst = String::from(r#"{"last_error":""#);
    while worst.len() < size {
        worst.push_str("\\u00e9");
    }
    worst.push_str(r#"","databases":{}}"#);
    let mut status = MirrorStatus::default();
    let mut i = 0;
    loop {
        status.databases.insert(
            format!("database-{i}"),
            DatabaseStatus {
                published_version: Some(27_000 + i),
                cdiffs: (26_900..27_000).collect(),
                last_error: Some("upstream answered 503".into()),
                ..DatabaseStatus::default()
            },
        );
        i += 1;
        if i % 64 == 0 && mirror_core::json_file::pretty(&status)?.len() >= size {
            break;
        }
    }
    let typical = mirror_core::json_file::pretty(&status)?;
    let parse = |b: &[u8]| serde_json::from_slice::<MirrorStatus>(b).map(|_| ());
    parse(worst.as_bytes()).context("worst status.json")?;
    parse(&typical).context("typical status.json")?;
    rows.push(Row {
        parser: "JSON state (status.json)",
        worst: "4 MiB string of \\u escapes".into(),
        worst_bytes: worst.len(),
        worst_time: best(|| {
            let _ = parse(worst.as_bytes());
        }),
        typical: format!("{i} databases with 100 cdiffs each"),
        typical_bytes: typical.len(),
        typical_time: best(|| {
            let _ = parse(&typical);
        }),
    });
    Ok(())
}

fn main() -> Result<()> {
    let mut rows = Vec::new();
    let t = Instant::now();
    cvd_container(&mut rows)?;
    info(&mut rows)?;
    signatures(&mut rows)?;
    cdiff_rows(&mut rows)?;
    txt_record(&mut rows)?;
    dns(&mut rows);
    h1(&mut rows);
    notice(&mut rows)?;
    status_json(&mut rows)?;
    sign(&mut rows)?;
    println!("worst cases per parser (best of several runs; ratio = worst/typical per byte)");
    println!("| parser | worst input | size | time | typical input | size | time | ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            r.parser,
            r.worst,
            fmt_bytes(r.worst_bytes),
            fmt_time(r.worst_time),
            r.typical,
            fmt_bytes(r.typical_bytes),
            fmt_time(r.typical_time),
            r.ratio()
        );
    }
    println!("(total {:.1} s)", t.elapsed().as_secs_f64());
    Ok(())
}
