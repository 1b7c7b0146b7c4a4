//! `[[feed]]` parsing and validation: defaults, and a clear error naming the feed and
//! the key for each mistake.

use feeds::{DEFAULT_MAX_FILE_SIZE, Digest, VerifyMode};
use proptest::prelude::*;
use testkit::feeds::SimKey;

use crate::support::{config_error, feed, q};

fn key() -> String {
    q(&SimKey::Rsa2048.public_key_path().to_string_lossy())
}

#[test]
fn a_full_configuration_parses_with_its_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "abc123\n").unwrap();
    let set = feeds::parse_feeds(&format!(
        r#"
dir = "/srv/mirror"       # the binary's own keys are ignored here
[[feed]]
name = "sanesecurity"
url = ["https://a.example.org/ss/", "http://b.example.org/ss"]
files = ["junk.ndb", "phish.ndb"]
verify = "openpgp"
keys = ["builtin:sanesecurity", {key}]
openpgp-digests = ["sha1", "sha256"]
min-interval-secs = 3600
load-check = true

[[feed]]
name = "securiteinfo"
url = "https://www.example.org/get/{{token}}"
token_file = {tok}
files = ["securiteinfo.hdb"]
verify = "none"
max_file_size = 1000
"#,
        key = key(),
        tok = q(&token.to_string_lossy())
    ))
    .unwrap();
    let ss = set.get("sanesecurity").unwrap();
    assert_eq!(ss.files(), ["junk.ndb", "phish.ndb"]);
    assert_eq!(ss.verify(), VerifyMode::Openpgp);
    assert_eq!(ss.keys().certs().len(), 2);
    assert!(ss.digests().allows(Digest::Sha1));
    assert_eq!(ss.min_interval_secs(), 3600);
    assert!(ss.load_check());
    assert_eq!(ss.max_file_size(), DEFAULT_MAX_FILE_SIZE);
    let urls: Vec<String> = ss.urls().iter().map(|u| u.to_string()).collect();
    assert_eq!(
        urls,
        ["https://a.example.org/ss", "http://b.example.org/ss"]
    );
    let si = set.get("securiteinfo").unwrap();
    assert!(si.unverified() && si.has_token());
    assert_eq!(si.max_file_size(), 1000);
    assert_eq!(
        si.urls()[0].to_string(),
        "https://www.example.org/get/<token>"
    );
    assert!(
        !si.digests().allows(Digest::Sha1),
        "SHA-1 only when allowed"
    );
    assert!(!format!("{si:?}").contains("abc123"), "{si:?}");
    // No [[feed]] at all is an empty set.
    assert!(
        feeds::parse_feeds("dir = \"/x\"\n")
            .unwrap()
            .feeds()
            .is_empty()
    );
}

/// A feed table with one key replaced (or added).
fn with(name: &str, line: &str) -> String {
    let mut body = vec![
        format!("name = {}", q(name)),
        "url = \"https://example.org/f\"".to_owned(),
        "files = [\"a.ndb\"]".to_owned(),
        "verify = \"openpgp\"".to_owned(),
        format!("keys = [{}]", key()),
    ];
    let k = line.split('=').next().unwrap().trim();
    body.retain(|l| !l.starts_with(&format!("{k} ")));
    body.push(line.to_owned());
    format!("[[feed]]\n{}\n", body.join("\n"))
}

#[test]
fn each_mistake_is_an_error_naming_the_feed_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.asc");
    std::fs::write(&garbage, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n").unwrap();
    let missing = tmp.path().join("missing.asc");
    let cases: Vec<(String, &str, &str)> = vec![
        (with("Bad", "files = [\"a.ndb\"]"), "name", "a-z"),
        (with("status", "files = [\"a.ndb\"]"), "name", "reserved"),
        (with("metrics", "files = [\"a.ndb\"]"), "name", "reserved"),
        (with("a..b", "files = [\"a.ndb\"]"), "name", ".."),
        (with("daily.cvd", "files = [\"a.ndb\"]"), "name", ".cvd"),
        (with("f", "url = \"ftp://example.org/f\""), "url", "http"),
        (with("f", "url = []"), "url", "no URL"),
        (with("f", "url = \"https:///nohost\""), "url", "host"),
        (
            with("f", "url = \"https://example.org/f?x=1\""),
            "url",
            "query",
        ),
        (
            with("f", "url = \"https://example.org/{token}\""),
            "url",
            "token_file",
        ),
        (with("f", "files = []"), "files", "no files"),
        (
            with("f", "files = [\"../etc/passwd\"]"),
            "files",
            "plain file name",
        ),
        (
            with("f", "files = [\"a/b.ndb\"]"),
            "files",
            "plain file name",
        ),
        (with("f", "files = [\"a.ndb.sig\"]"), "files", ".sig"),
        (
            with("f", "files = [\"a.ndb\", \"a.ndb\"]"),
            "files",
            "twice",
        ),
        (with("f", "keys = []"), "keys", "at least one key"),
        (
            with("f", &format!("keys = [{}]", q(&missing.to_string_lossy()))),
            "keys",
            "missing.asc",
        ),
        (
            with("f", &format!("keys = [{}]", q(&garbage.to_string_lossy()))),
            "keys",
            "garbage.asc",
        ),
        (with("f", "verify = \"sha256\""), "keys", "only used"),
        (
            with("f", "openpgp_digests = []"),
            "openpgp_digests",
            "empty",
        ),
        (
            with("f", "max_file_size = 0"),
            "max_file_size",
            "more than 0",
        ),
        (
            with(
                "f",
                &format!("token_file = {}", q(&missing.to_string_lossy())),
            ),
            "token_file",
            "missing.asc",
        ),
    ];
    for (text, key, what) in cases {
        let e = config_error(&text);
        assert!(
            e.contains(key) && e.contains(what) && (e.contains("\"f\"") || key == "name"),
            "{text}\n=> {e}"
        );
    }
    // A duplicate name names the feed.
    let text = format!(
        "{}{}",
        with("dup", "load_check = true"),
        with("dup", "load_check = true")
    );
    let e = config_error(&text);
    assert!(e.contains("\"dup\"") && e.contains("same name"), "{e}");
    // Unknown keys and wrong types are syntax errors naming the key.
    let e = config_error(&with("f", "colour = \"red\""));
    assert!(e.contains("colour"), "{e}");
    let e = config_error(&with("f", "verify = \"pgp\""));
    assert!(e.contains("pgp"), "{e}");
    let e = config_error(&with("f", "openpgp_digests = [\"md5\"]"));
    assert!(e.contains("md5"), "{e}");
}

#[test]
fn a_token_file_is_required_to_be_a_url_safe_secret_and_is_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    for (content, what) in [
        ("", "empty"),
        ("a/b-SECRETX", "characters"),
        ("sp ace SECRETX", "characters"),
    ] {
        std::fs::write(&token, content).unwrap();
        let text = format!(
            "[[feed]]\nname = \"t\"\nurl = \"https://example.org/{{token}}\"\nfiles = [\"a.hdb\"]\nverify = \"none\"\ntoken_file = {}\n",
            q(&token.to_string_lossy())
        );
        let e = config_error(&text);
        assert!(e.contains("token_file") && e.contains(what), "{e}");
        assert!(!e.contains("SECRETX"), "the token leaked: {e}");
    }
    // A token without a placeholder to put it in.
    std::fs::write(&token, "ok").unwrap();
    let text = format!(
        "[[feed]]\nname = \"t\"\nurl = \"https://example.org/x\"\nfiles = [\"a.hdb\"]\nverify = \"none\"\ntoken_file = {}\n",
        q(&token.to_string_lossy())
    );
    assert!(config_error(&text).contains("placeholder"));
}

#[test]
fn relative_paths_resolve_against_the_configuration_directory() {
    let mut c: feeds::FeedConfig = toml::from_str(
        "name = \"r\"\nurl = \"https://e.org/r\"\nfiles = [\"a.ndb\"]\nverify = \"openpgp\"\nkeys = [\"rsa.pub.asc\", \"builtin:sanesecurity\"]\n",
    )
    .unwrap();
    c.resolve_relative_to(&testkit::feeds::testdata_feeds());
    let f = feeds::FeedSet::validate(vec![c]).unwrap();
    assert_eq!(f.feeds()[0].keys().certs().len(), 2);
}

/// The reference rule for names, written independently of the crate's.
fn name_ok(n: &str) -> bool {
    let re_ok = !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
    re_ok
        && !n.contains("..")
        && !n.ends_with('.')
        && !feeds::RESERVED_NAMES.contains(&n)
        && ![".cvd", ".cld", ".cdiff", ".sign", ".txt", ".json"]
            .iter()
            .any(|s| n.ends_with(s))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn names_are_accepted_exactly_by_the_rule(
        name in prop_oneof![
            "[a-z0-9][a-z0-9._-]{0,70}",
            "[A-Za-z0-9._/ -]{0,10}",
            Just("status".to_owned()),
            Just("x.cvd".to_owned()),
        ]
    ) {
        let text = format!(
            "[[feed]]\nname = {}\nurl = \"https://e.org/f\"\nfiles = [\"a.ndb\"]\nverify = \"sha256\"\n",
            q(&name)
        );
        let r = feeds::parse_feeds(&text);
        prop_assert_eq!(r.is_ok(), name_ok(&name), "{:?}: {:?}", name, r.err().map(|e| e.chain()));
    }

    #[test]
    fn file_names_never_escape_the_feed_directory(file in "[A-Za-z0-9./\\\\_-]{0,20}") {
        let text = format!(
            "[[feed]]\nname = \"f\"\nurl = \"https://e.org/f\"\nfiles = [{}]\nverify = \"md5\"\n",
            q(&file)
        );
        if let Ok(set) = feeds::parse_feeds(&text) {
            let f = &set.feeds()[0].files()[0];
            prop_assert!(!f.contains('/') && !f.contains('\\') && !f.contains("..") && !f.starts_with('.'));
            prop_assert!(std::path::Path::new(f).components().count() == 1);
        }
    }

    #[test]
    fn any_toml_text_is_an_answer_never_a_panic(text in "\\PC{0,200}") {
        let _ = feeds::parse_feeds(&text);
    }
}

#[test]
fn a_single_feed_validates_on_its_own() {
    let f =
        feed("name = \"solo\"\nurl = \"https://e.org/s\"\nfiles = [\"s.ndb\"]\nverify = \"md5\"");
    assert_eq!(f.verify().companion("s.ndb").as_deref(), Some("s.ndb.md5"));
}
