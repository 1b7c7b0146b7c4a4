//! A request finishes on the snapshot it started on, even when `current` is switched
//! and the old generation deleted mid-transfer.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::path::Path;

use crate::util::{Server, get};

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn generation(root: &Path, n: u32, cvd: &[u8], cdiff: &[u8]) -> String {
    let name = format!("g-{n:06}");
    let g = root.join("generations").join(&name);
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(g.join("daily.cvd"), cvd).unwrap();
    std::fs::write(g.join(format!("daily-{n}.cdiff")), cdiff).unwrap();
    name
}

#[test]
fn download_in_progress_keeps_the_old_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let old = content(1, 24 << 20);
    let new = content(2, 20 << 20);
    let g1 = generation(root, 1, &old, b"cdiff one");
    crate::util::switch_current(root, &g1);
    let s = Server::start(root, &[]);

    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(b"GET /daily.cvd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let h = crate::util::read_head(&mut c);
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length"),
        Some(old.len().to_string().as_str())
    );
    let mut got = vec![0u8; 256 * 1024];
    c.read_exact(&mut got).unwrap();

    // Publish a new generation and prune the old one while the client is mid-body.
    let g2 = generation(root, 2, &new, b"cdiff two");
    crate::util::switch_current(root, &g2);
    std::fs::remove_dir_all(root.join("generations").join(&g1)).unwrap();

    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), old.len());
    assert!(got == old, "the body mixed snapshots");

    // New requests see the new snapshot only.
    let r = get(s.addr, "/daily.cvd", "");
    assert_eq!(r.body.len(), new.len());
    assert!(r.body == new);
    assert_eq!(get(s.addr, "/daily-2.cdiff", "").body, b"cdiff two");
    assert_eq!(get(s.addr, "/daily-1.cdiff", "").status, 404);
}

#[test]
fn range_request_in_progress_keeps_the_old_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let old = content(3, 16 << 20);
    let g1 = generation(root, 1, &old, b"x");
    crate::util::switch_current(root, &g1);
    let s = Server::start(root, &[]);
    let mut c = testkit::net::connect(s.addr).unwrap();
    c.write_all(
        b"GET /daily.cvd HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let h = crate::util::read_head(&mut c);
    assert_eq!(h.status, 206);
    let mut got = vec![0u8; 4096];
    c.read_exact(&mut got).unwrap();
    let g2 = generation(root, 2, &content(4, 16 << 20), b"y");
    crate::util::switch_current(root, &g2);
    std::fs::remove_dir_all(root.join("generations").join(&g1)).unwrap();
    c.read_to_end(&mut got).unwrap();
    assert!(got == old[1000..]);
}

#[test]
fn mirror_layout_is_preferred_over_files_in_dir() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    // A stray file at the top level must not be served once `current` exists.
    std::fs::write(root.join("main.cvd"), b"stray").unwrap();
    let g1 = generation(root, 1, b"published", b"c");
    crate::util::switch_current(root, &g1);
    let s = Server::start(root, &[]);
    assert_eq!(get(s.addr, "/daily.cvd", "").body, b"published");
    assert_eq!(get(s.addr, "/main.cvd", "").status, 404);
}
