//! Zero-copy file bodies on plain-TCP HTTP/1 connections (Linux): the response head
//! is sent with `MSG_MORE`, so head and body leave in the same segments, then the body
//! goes from the request's own descriptor to the socket with `sendfile(2)`, never
//! copied through user space. For the 60 KiB `bytecode.cvd` on loopback the copy was
//! the largest item of the server's profile; nginx avoids it the same way
//! (`sendfile on; tcp_nopush on`).
//!
//! Both calls go through `rustix` (safe wrappers) and tokio's readiness
//! ([`TcpStream::async_io`]): `EAGAIN` waits for the socket to become writable.

use std::fs::File;
use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Largest `sendfile` call (bounds the time one connection holds the worker).
pub(crate) const MAX_CALL: usize = 1024 * 1024;

/// Whether this platform has `sendfile`.
pub(crate) const AVAILABLE: bool = cfg!(target_os = "linux");

/// Sends some of `head` with `MSG_MORE` (more data follows at once); the number of
/// bytes sent.
pub(crate) async fn send_more(tcp: &TcpStream, head: &[u8]) -> io::Result<usize> {
    tcp.async_io(Interest::WRITABLE, || raw::send_more(tcp, head))
        .await
}

/// Sends some of `file[offset..offset + count]` with `sendfile`; the number of bytes
/// sent (0: the file is shorter than expected).
pub(crate) async fn send_file(
    tcp: &TcpStream,
    file: &File,
    offset: u64,
    count: u64,
) -> io::Result<usize> {
    tcp.async_io(Interest::WRITABLE, || {
        raw::send_file(tcp, file, offset, count)
    })
    .await
}

/// [`send_more`] without waiting: `WouldBlock` when the socket is full.
pub(crate) fn try_send_more(tcp: &TcpStream, head: &[u8]) -> io::Result<usize> {
    tcp.try_io(Interest::WRITABLE, || raw::send_more(tcp, head))
}

/// [`send_file`] without waiting: `WouldBlock` when the socket is full.
pub(crate) fn try_send_file(
    tcp: &TcpStream,
    file: &File,
    offset: u64,
    count: u64,
) -> io::Result<usize> {
    tcp.try_io(Interest::WRITABLE, || {
        raw::send_file(tcp, file, offset, count)
    })
}

/// The system calls, made once each (readiness is the callers' business).
#[cfg(target_os = "linux")]
mod raw {
    use std::fs::File;
    use std::io;

    use rustix::net::{SendFlags, send};
    use tokio::net::TcpStream;

    pub(super) fn send_more(tcp: &TcpStream, head: &[u8]) -> io::Result<usize> {
        send(tcp, head, SendFlags::MORE | SendFlags::NOSIGNAL).map_err(io::Error::from)
    }

    pub(super) fn send_file(
        tcp: &TcpStream,
        file: &File,
        offset: u64,
        count: u64,
    ) -> io::Result<usize> {
        let n = usize::try_from(count)
            .unwrap_or(super::MAX_CALL)
            .min(super::MAX_CALL);
        let mut off = offset;
        rustix::fs::sendfile(tcp, file, Some(&mut off), n).map_err(io::Error::from)
    }
}

/// Without `sendfile` (not Linux) no connection is offered it; these are never called.
#[cfg(not(target_os = "linux"))]
mod raw {
    use std::fs::File;
    use std::io;

    use tokio::net::TcpStream;

    fn unavailable() -> io::Error {
        io::Error::other("sendfile is not available on this platform")
    }

    pub(super) fn send_more(_tcp: &TcpStream, _head: &[u8]) -> io::Result<usize> {
        Err(unavailable())
    }

    pub(super) fn send_file(_: &TcpStream, _: &File, _: u64, _: u64) -> io::Result<usize> {
        Err(unavailable())
    }
}
