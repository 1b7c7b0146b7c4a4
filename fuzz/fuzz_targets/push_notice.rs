#![no_main]
//! Push notices: the notice parser (what parses must round-trip) and the receiver's
//! checks on arbitrary headers and bodies (never a panic, never an acceptance without
//! the secret).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use push::auth::Secret;
use push::notice::Notice;
use push::receiver::{NoticeHeaders, Receiver, ReceiverConfig};

fn receiver() -> &'static Receiver {
    static R: OnceLock<Receiver> = OnceLock::new();
    R.get_or_init(|| {
        let secret = Secret::new(b"fuzzing secret, 0123456789").expect("a long secret");
        Receiver::new(
            BTreeMap::from([("origin".to_owned(), secret)]),
            ReceiverConfig::default(),
        )
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Notice::parse(data) {
        assert_eq!(Notice::parse(&n.to_bytes()).ok(), Some(n));
    }
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let sender = text(parts.next());
    let signature = text(parts.next());
    let body = parts.next().unwrap_or(&[]);
    let headers = NoticeHeaders {
        sender,
        timestamp: Some("1000".to_owned()),
        signature,
    };
    // A MAC cannot be guessed: anything accepted here would be a forgery.
    assert!(receiver().check(&headers, body, 1_000_000).is_err());
});
