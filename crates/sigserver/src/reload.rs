//! Configuration reload of a running server (`SIGHUP` in the binary).
//!
//! Some settings change in place, for the next request on every connection, without
//! closing any: the access log, the rate limit and `/ready`'s maximum sync age. The
//! others shape sockets, buffers and threads made at start; a reload reports them as
//! needing a restart and keeps the running values.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::serve::State;

/// Applies new configurations to a running [`Server`](crate::Server); get one with
/// [`Server::reloader`](crate::Server::reloader) before [`Server::run`](crate::Server::run).
#[derive(Debug, Clone)]
pub struct Reloader {
    state: Arc<State>,
    running: Arc<Mutex<Config>>,
}

/// What a [`Reloader::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Settings changed in place (`access_log`, `rate_limit`, `ready_max_age`).
    pub applied: Vec<&'static str>,
    /// Settings that differ from the running ones but only take effect after a restart.
    pub need_restart: Vec<&'static str>,
}

impl Reloader {
    pub(crate) fn new(state: Arc<State>, config: Config) -> Self {
        Reloader {
            state,
            running: Arc::new(Mutex::new(config)),
        }
    }

    /// Applies what can change live from `new` and lists what cannot.
    pub fn apply(&self, new: &Config) -> ReloadOutcome {
        let mut running = match self.running.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut out = ReloadOutcome::default();
        if new.access_log != running.access_log {
            self.state
                .access_log
                .store(new.access_log, Ordering::Relaxed);
            running.access_log = new.access_log;
            out.applied.push("access_log");
        }
        if new.rate_limit != running.rate_limit {
            if let Some((rate, burst)) = new.rate_limit {
                self.state.rate.set(rate, burst);
            }
            self.state
                .rate_on
                .store(new.rate_limit.is_some(), Ordering::Relaxed);
            running.rate_limit = new.rate_limit;
            out.applied.push("rate_limit");
        }
        if new.ready_max_age != running.ready_max_age {
            self.state
                .ready_max_age
                .store(new.ready_max_age.as_secs(), Ordering::Relaxed);
            running.ready_max_age = new.ready_max_age;
            out.applied.push("ready_max_age");
        }
        macro_rules! fixed {
            ($($f:ident),*) => {$(
                if new.$f != running.$f {
                    out.need_restart.push(stringify!($f));
                }
            )*};
        }
        fixed!(
            dir,
            listen,
            tls,
            max_connections,
            max_header_bytes,
            header_timeout,
            idle_timeout,
            shutdown_timeout,
            chunk_bytes,
            http2,
            sendfile,
            workers,
            cache_bytes,
            cache_max_file
        );
        out
    }
}
