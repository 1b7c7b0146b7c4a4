//! `sha256sum` / `md5sum` sidecars: every form a provider writes, and refusals.

use feeds::{Error, SidecarAlgorithm, parse_sidecar};
use proptest::prelude::*;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

#[test]
fn the_forms_providers_write_parse() {
    let up = SHA.to_ascii_uppercase();
    for text in [
        SHA.to_string(),
        format!("{SHA}\n"),
        format!("{SHA}  a.ndb\n"),
        format!("{SHA} *a.ndb\r\n"),
        format!("{up}  ./dir/a.ndb\n"),
        format!("\u{feff}{SHA}  a.ndb"),
        format!("{}  other.ndb\n{SHA}  a.ndb\n", "0".repeat(64)),
    ] {
        let got = parse_sidecar(SidecarAlgorithm::Sha256, "a.ndb", text.as_bytes());
        assert_eq!(got.as_deref().ok(), Some(SHA), "{text:?}: {got:?}");
    }
}

#[test]
fn refusals_are_malformed_sidecars() {
    for text in [
        String::new(),
        "   \n".into(),
        format!("{SHA}  b.ndb\n"),
        SHA[..63].to_owned(),
        format!("{SHA}0"),
        format!("{}  a.ndb", "g".repeat(64)),
        format!("{SHA}  a.ndb\n{SHA}  a.ndb\n"),
        format!("{SHA}\n{SHA}\n"),
        "x".repeat(70_000),
    ] {
        let e = parse_sidecar(SidecarAlgorithm::Sha256, "a.ndb", text.as_bytes()).unwrap_err();
        assert!(
            matches!(e, Error::MalformedSidecar { .. }),
            "{text:?}: {e:?}"
        );
    }
    // An MD5 is 32 hex digits, not 64.
    assert!(parse_sidecar(SidecarAlgorithm::Md5, "a.ndb", SHA.as_bytes()).is_err());
    assert!(parse_sidecar(SidecarAlgorithm::Md5, "a.ndb", b"\xff\xfe").is_err());
}

fn hexs(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..16, len)
        .prop_map(|v| v.iter().map(|d| format!("{d:x}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_digest_in_any_layout_parses_to_itself(
        md5 in any::<bool>(),
        h64 in hexs(64),
        h32 in hexs(32),
        upper in any::<bool>(),
        star in any::<bool>(),
        named in any::<bool>(),
        crlf in any::<bool>(),
        others in proptest::collection::vec("[a-z]{1,8}\\.ndb", 0..3),
    ) {
        let (alg, hex) = if md5 { (SidecarAlgorithm::Md5, h32) } else { (SidecarAlgorithm::Sha256, h64) };
        let shown = if upper { hex.to_ascii_uppercase() } else { hex.clone() };
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        let others: Vec<String> = others.into_iter().filter(|o| o != "f.ndb").collect();
        for o in &others {
            text.push_str(&format!("{}  {o}{eol}", "a".repeat(hex.len())));
        }
        let named = named || !others.is_empty();
        if named {
            text.push_str(&format!("{shown} {}f.ndb{eol}", if star { "*" } else { " " }));
        } else {
            text.push_str(&format!("{shown}{eol}"));
        }
        prop_assert_eq!(parse_sidecar(alg, "f.ndb", text.as_bytes()).ok(), Some(hex));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_parses_is_hex(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for alg in [SidecarAlgorithm::Sha256, SidecarAlgorithm::Md5] {
            if let Ok(h) = parse_sidecar(alg, "f.ndb", &bytes) {
                prop_assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn the_fuzz_entry_point_holds_on_random_input(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        feeds::fuzzing::feed_sig(&bytes);
    }
}
