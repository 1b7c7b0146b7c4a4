//! Client sockets for tests: every read (and write) has a timeout, so that a broken
//! or hung server fails the test instead of hanging it.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The connect, read and write timeout of [`connect`]: far beyond what a working
/// server on loopback needs, short enough for a test run to report a hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects to `addr` with [`IO_TIMEOUT`] on the connection, every read and every
/// write.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    #[test]
    fn a_connection_has_its_timeouts() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(IO_TIMEOUT));
        assert_eq!(s.write_timeout().unwrap(), Some(IO_TIMEOUT));
    }
}
