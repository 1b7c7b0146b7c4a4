//! The build time of a served `.cvd`/`.cld`, read from its header: its `Last-Modified`.
//!
//! A client sends its local copy's build time as `If-Modified-Since`; dating the
//! database by anything else (the time this mirror synced it) makes an older database
//! look newer and `freshclam` installs it ("settle for a slightly out-of-date
//! database"). The sync engine also sets the files' modification times to it; reading
//! the header here keeps the rule for plain directories and older generations.
//! One `pread` of 512 bytes per new file identity; the last few are remembered per
//! thread.

use std::cell::RefCell;
use std::os::unix::fs::FileExt as _;

use crate::cache::FileId;

/// Remembered identities per thread.
const MEMO: usize = 16;

/// Recent (file identity, build time) pairs and the next slot to replace.
type Memo = (Vec<(FileId, Option<u64>)>, usize);

thread_local! {
    static LAST: RefCell<Memo> = const { RefCell::new((Vec::new(), 0)) };
}

/// The header's build time in seconds since the epoch, `None` when the file has no
/// valid header (then its modification time stands).
pub(crate) fn of(file: &std::fs::File, meta: &std::fs::Metadata) -> Option<u64> {
    let id = FileId::of(meta);
    if let Some(hit) = LAST.with(|m| m.borrow().0.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)) {
        return hit;
    }
    let mut head = [0u8; cvd_format::header::HEADER_SIZE];
    let value = file
        .read_exact_at(&mut head, 0)
        .ok()
        .and_then(|()| cvd_format::Header::parse(&head).ok())
        .and_then(|h| u64::try_from(h.build_time.unix_timestamp()).ok());
    LAST.with(|m| {
        let mut m = m.borrow_mut();
        let slot = m.1 % MEMO;
        if m.0.len() < MEMO {
            m.0.push((id, value));
        } else {
            m.0[slot] = (id, value);
        }
        m.1 = m.1.wrapping_add(1);
    });
    value
}
