//! Threat: push notices that maximise the parser's work within its limits (issue 21
//! item 2). A body is at most `MAX_NOTICE_LEN` (16 KiB), checked before JSON parsing,
//! so the work per notice is bounded by a constant; these tests feed the worst bodies
//! and check the clear error.

use push::Error;
use push::notice::{MAX_NOTICE_LEN, Notice};

/// A notice of `MAX_NOTICE_LEN` bytes whose hop list is as long as the size allows:
/// serde parses every hop before validation refuses the count.
fn most_hops() -> Vec<u8> {
    let mut body =
        r#"{"format":1,"id":"a","origin":"o","sent_ms":1,"databases":{"daily":1},"hops":["#
            .to_string();
    let hop = r#"{"mirror":"m","published_ms":1}"#;
    while body.len() + 2 * (hop.len() + 1) < MAX_NOTICE_LEN {
        body.push_str(hop);
        body.push(',');
    }
    body.push_str(hop);
    body.push_str("]}");
    body.into_bytes()
}

#[test]
fn the_longest_hop_list_is_parsed_then_refused_by_count() {
    let body = most_hops();
    assert!(body.len() <= MAX_NOTICE_LEN && body.len() > MAX_NOTICE_LEN - 100);
    match Notice::parse(&body) {
        Err(Error::Invalid(why)) => assert!(why.contains("hops"), "{why}"),
        other => panic!("expected the hop count to be refused, got {other:?}"),
    }
}

#[test]
fn deep_nesting_and_oversize_are_refused_before_any_work() {
    // 16 KiB of `[`: serde_json stops at its recursion limit (128).
    let nested = vec![b'['; MAX_NOTICE_LEN];
    assert!(matches!(Notice::parse(&nested), Err(Error::Json(_))));
    let nested_object = r#"{"format":"#.repeat(MAX_NOTICE_LEN / 10);
    assert!(matches!(
        Notice::parse(nested_object.as_bytes()),
        Err(Error::Json(_))
    ));
    // One byte more than the limit is refused by size, whatever it holds.
    let mut big = most_hops();
    big.resize(MAX_NOTICE_LEN + 1, b' ');
    assert!(matches!(Notice::parse(&big), Err(Error::TooLarge { .. })));
}
