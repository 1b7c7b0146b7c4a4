//! A token in the URL never appears in reports, errors, logs or files left behind.

use std::io::Write;
use std::sync::{Arc, Mutex};

use feeds::FileOutcome;
use testkit::feeds::{FeedSim, SimKey};

use crate::support::{Mirror, feed, list, ndb, q};

const TOKEN: &str = "Tok3n-Very-Secret_42";

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every file under `dir`, names and contents, as text.
fn tree_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        out.push_str(&p.to_string_lossy());
        if p.is_dir() {
            out.push_str(&tree_text(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn the_token_never_appears_in_reports_errors_logs_or_files() {
    let sim = FeedSim::start(&format!("/get/{TOKEN}"));
    sim.publish("good.hdb", &ndb("Good", "676f6f64"), SimKey::Rsa2048);
    sim.publish("later.hdb", &ndb("Later", "6c61746572"), SimKey::Rsa2048);
    sim.drop_signature("later.hdb");
    // A dead first upstream (fetch logs the failover with the URL) and a 429 on one
    // file (fetch logs the cool-down with the URL).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let port = sim.server().addr().port();
    let f = feed(&format!(
        "name = \"si\"\nurl = [{}, {}]\ntoken_file = {}\nfiles = [\"good.hdb\", \"later.hdb\", \"absent.hdb\", \"limited.hdb\"]\nverify = \"openpgp\"\nkeys = [{}]",
        q(&format!("http://{dead}/get/{{token}}")),
        q(&format!("http://127.0.0.1:{port}/get/{{token}}")),
        q(&token_file.to_string_lossy()),
        q(&SimKey::Rsa2048.public_key_path().to_string_lossy())
    ));
    sim.publish("limited.hdb", &ndb("Lim", "6c696d"), SimKey::Rsa2048);
    sim.rate_limit(Some("limited.hdb"), 600, 1);
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let mut m = Mirror::new();
    let r = tracing::subscriber::with_default(subscriber, || m.sync(&f));
    let outcomes: Vec<FileOutcome> = r.files.iter().map(|x| x.outcome).collect();
    assert_eq!(
        outcomes,
        [
            FileOutcome::Updated,
            FileOutcome::Failed,
            FileOutcome::Failed,
            FileOutcome::Failed
        ],
        "{r:#?}"
    );
    let logs = logs.text();
    // The captured logs are fetch's and ours, with the URL redacted in them.
    assert!(
        logs.contains("upstream failed; trying the next one"),
        "{logs}"
    );
    assert!(logs.contains("rate limited"), "{logs}");
    assert!(logs.contains("/get/<token>/"), "{logs}");
    let mut everything = vec![
        logs,
        format!("{r:?}"),
        format!("{r:#?}"),
        serde_json::to_string(&r).unwrap(),
        format!("{f:?}"),
        String::from_utf8_lossy(&m.state.to_json()).into_owned(),
        tree_text(m.tmp.path()),
    ];
    for file in &r.files {
        if let Some(e) = &file.error {
            everything.push(e.chain());
            everything.push(format!("{e:?}"));
        }
    }
    for (i, text) in everything.iter().enumerate() {
        assert!(
            !text.contains(TOKEN),
            "the token leaked in item {i}: {text}"
        );
    }
    // The errors still say where: the redacted URL.
    let absent = r.files[2].error.as_ref().unwrap().to_string();
    assert!(absent.contains("/get/<token>/absent.hdb"), "{absent}");
    assert!(list(&m.published(&f)).contains(&"good.hdb".to_owned()));
}
