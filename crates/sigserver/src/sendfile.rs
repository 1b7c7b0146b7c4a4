//! Zero-copy file bodies on plain-TCP HTTP/1 connections: `sendfile(2)` under hyper.
//!
//! hyper writes a response body as the byte buffers the body yields; it cannot hand a
//! file descriptor to the socket (hyperium/hyper#3026). Copying a file's bytes through
//! user space into the socket costs as much CPU as the whole rest of a request: for the
//! 60 KiB `bytecode.cvd` on loopback the copy (`_copy_from_iter` and the pages it fills)
//! was the largest item of the server's profile, and nginx with `sendfile off` is as
//! slow as sigserver was, while nginx with `sendfile on` needs half the CPU per request.
//!
//! So on a plain (non-TLS) HTTP/1 connection a file body yields *placeholder* frames:
//! slices of one process-wide allocation that is never written and never read (zeroed
//! by the allocator, so its pages are not even resident), each recorded in the
//! connection's [`SendQueue`] with the file range it stands for. The connection's socket
//! ([`SendfileTcp`]) recognises placeholder memory, by address, in what hyper asks it to
//! write: it sends what precedes it (the response head) with `MSG_MORE`, so head and
//! body leave in the same segments, and calls `sendfile` from the request's own
//! descriptor for the placeholder part. The one-snapshot-per-request guarantee is
//! unchanged: the bytes come from the descriptor the request opened.
//!
//! Content safety: hyper is configured for vectored writes (`writev(true)`, its "queue"
//! strategy, which passes body buffers through unchanged and never copies them), and
//! every placeholder met must be exactly the next recorded one at the expected position
//! (each frame starts at a different address); anything else fails the connection with
//! an error. TLS and HTTP/2 connections never get placeholders.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
#[cfg(target_os = "linux")]
pub(crate) use linux::SendfileTcp;

/// Largest placeholder frame (one `sendfile` call at most).
pub(crate) const MAX_FRAME: usize = 1024 * 1024;
/// Distinct start offsets of consecutive frames within the placeholder region.
const ROTATE: usize = 4096;

/// The placeholder region: allocated zeroed (fresh anonymous pages, never touched) and
/// kept for the life of the process, so placeholders are `Bytes::from_static` slices:
/// no reference count shared (and bounced) between worker threads.
fn region() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| Box::leak(vec![0u8; MAX_FRAME + ROTATE].into_boxed_slice()))
}

fn region_span() -> (usize, usize) {
    let r = region();
    let start = r.as_ptr() as usize;
    (start, start + r.len())
}

/// One placeholder frame handed to hyper and not yet fully sent.
#[derive(Debug)]
struct Pending {
    file: Arc<File>,
    /// File offset of the frame's first byte.
    offset: u64,
    /// Address of the frame's first placeholder byte.
    addr: usize,
    len: usize,
    done: usize,
}

/// The placeholder frames of one connection, in the order they were yielded (which is
/// the order hyper writes them).
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    inner: Mutex<QueueInner>,
}

#[derive(Debug, Default)]
struct QueueInner {
    frames: VecDeque<Pending>,
    seq: usize,
}

impl SendQueue {
    /// A placeholder of `len` (≤ [`MAX_FRAME`]) bytes standing for `file[offset..]`.
    pub(crate) fn placeholder(&self, file: &Arc<File>, offset: u64, len: usize) -> Bytes {
        let len = len.min(MAX_FRAME);
        let Ok(mut q) = self.inner.lock() else {
            // A poisoned queue: hand out an empty frame; the body then errors out
            // (it expected `len` bytes) and the connection is closed.
            return Bytes::new();
        };
        let start = q.seq % ROTATE;
        q.seq = q.seq.wrapping_add(1);
        let b = Bytes::from_static(&region()[start..start + len]);
        q.frames.push_back(Pending {
            file: file.clone(),
            offset,
            addr: b.as_ptr() as usize,
            len,
            done: 0,
        });
        b
    }
}

/// The socket side (Linux: `sendfile(2)`; elsewhere no connection gets a queue).
#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, ready};

    use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
    use tokio::net::TcpStream;

    use super::{SendQueue, region_span};

    fn mismatch() -> io::Error {
        io::Error::other("sendfile placeholder out of order (internal error); closing connection")
    }

    /// A TCP stream that sends placeholder frames with `sendfile` (see the module docs).
    #[derive(Debug)]
    pub(crate) struct SendfileTcp {
        tcp: TcpStream,
        queue: Arc<SendQueue>,
    }

    impl SendfileTcp {
        pub(crate) fn new(tcp: TcpStream, queue: Arc<SendQueue>) -> Self {
            SendfileTcp { tcp, queue }
        }

        /// Sends `bufs` (none of them placeholders) with `MSG_MORE`: a body follows.
        fn poll_send_more(
            &self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            use rustix::net::{SendAncillaryBuffer, SendFlags, sendmsg};
            loop {
                ready!(self.tcp.poll_write_ready(cx))?;
                let r = self.tcp.try_io(Interest::WRITABLE, || {
                    sendmsg(
                        &self.tcp,
                        bufs,
                        &mut SendAncillaryBuffer::default(),
                        SendFlags::MORE | SendFlags::NOSIGNAL,
                    )
                    .map_err(io::Error::from)
                });
                match r {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return Poll::Ready(other),
                }
            }
        }

        /// Sends (part of) the placeholder `buf`, which must continue the front frame.
        fn poll_sendfile(
            &self,
            cx: &mut Context<'_>,
            buf: &IoSlice<'_>,
        ) -> Poll<io::Result<usize>> {
            let Ok(mut q) = self.queue.inner.lock() else {
                return Poll::Ready(Err(mismatch()));
            };
            let Some(front) = q.frames.front_mut() else {
                return Poll::Ready(Err(mismatch()));
            };
            if buf.as_ptr() as usize != front.addr + front.done
                || buf.len() > front.len - front.done
            {
                return Poll::Ready(Err(mismatch()));
            }
            loop {
                ready!(self.tcp.poll_write_ready(cx))?;
                let mut off = front.offset + front.done as u64;
                let r = self.tcp.try_io(Interest::WRITABLE, || {
                    rustix::fs::sendfile(&self.tcp, &*front.file, Some(&mut off), buf.len())
                        .map_err(io::Error::from)
                });
                match r {
                    Ok(0) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while being served",
                        )));
                    }
                    Ok(n) => {
                        front.done += n;
                        if front.done == front.len {
                            q.frames.pop_front();
                        }
                        return Poll::Ready(Ok(n));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
    }

    impl AsyncRead for SendfileTcp {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for SendfileTcp {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let (lo, hi) = region_span();
            let is_placeholder = |b: &IoSlice<'_>| {
                let p = b.as_ptr() as usize;
                !b.is_empty() && p >= lo && p < hi
            };
            match bufs.iter().position(is_placeholder) {
                None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
                Some(0) => this.poll_sendfile(cx, &bufs[0]),
                Some(k) => this.poll_send_more(cx, &bufs[..k]),
            }
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
        }
    }
}
