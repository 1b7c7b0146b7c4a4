//! Sending notices to downstreams: in parallel with bounded concurrency, a short
//! timeout per attempt, retries with exponential backoff for a while, then giving up
//! (the downstream's own polling covers the rest). Runs on background threads: a dead
//! or slow downstream delays neither the others nor the local publish.
//!
//! Each downstream has its own secret ([`Downstream`]): a downstream knows only the key
//! of its own pair, so it cannot sign notices that its siblings would accept (unless
//! the operator gives several downstreams the same key).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fetch::{Backoff, HttpSettings};

use crate::auth::{SENDER_HEADER, SIGNATURE_HEADER, Secret, TIMESTAMP_HEADER};
use crate::notice::Notice;

/// Timing of a cascade, and the HTTP settings (CA, proxy) its requests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeConfig {
    /// Downstreams notified at the same time.
    pub concurrency: usize,
    /// Time limit of one attempt (connect, send, answer).
    pub timeout: Duration,
    /// Delay before the first retry; doubled after each failure (jittered: a random
    /// 50–100 % of it, [`fetch::Backoff`]).
    pub first_backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
    /// Retrying stops after this long.
    pub give_up_after: Duration,
    /// Trusted CAs and proxy: the operator's settings, as for upstream downloads.
    pub http: HttpSettings,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        CascadeConfig {
            concurrency: 8,
            timeout: Duration::from_secs(3),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            give_up_after: Duration::from_secs(300),
            http: HttpSettings::default(),
        }
    }
}

/// The result of one attempt, reported to the cascade's observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The downstream accepted the notice (2xx).
    Delivered,
    /// This attempt failed; another follows after the backoff.
    Failed(String),
    /// This attempt failed and no other follows (a refusal that retrying cannot
    /// change, or the time is up).
    GaveUp(String),
}

/// Called after every attempt with the downstream URL.
pub type Observer = Arc<dyn Fn(&str, &Attempt) + Send + Sync>;

/// One downstream: its `POST /push` URL and the secret of this pair.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// `http(s)://HOST[:PORT]/push`.
    pub url: String,
    /// The secret notices to it are signed with (its `Debug` prints no bytes).
    pub secret: Secret,
}

/// Sends notices to a fixed list of downstreams, signed as one sender.
#[derive(Clone)]
pub struct Cascade {
    downstreams: Vec<Downstream>,
    sender: String,
    config: CascadeConfig,
    observer: Observer,
}

impl std::fmt::Debug for Cascade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cascade")
            .field("downstreams", &self.downstreams)
            .field("sender", &self.sender)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Job<'a> {
    to: &'a Downstream,
    due: Instant,
    /// Failed attempts so far (the retry number of the next wait).
    failures: u32,
    started: Instant,
}

impl Cascade {
    /// A cascade to `downstreams`, signing as `sender` with each one's secret;
    /// `observer` hears every attempt's result.
    pub fn new(
        downstreams: Vec<Downstream>,
        sender: &str,
        config: CascadeConfig,
        observer: Observer,
    ) -> Self {
        Cascade {
            downstreams,
            sender: sender.to_owned(),
            config,
            observer,
        }
    }

    /// The downstreams.
    pub fn downstreams(&self) -> &[Downstream] {
        &self.downstreams
    }

    /// Sends `notice` to every downstream on background threads and returns at once.
    /// Join the handle to wait for the whole cascade (tests, shutdown).
    pub fn send(&self, notice: Notice) -> std::thread::JoinHandle<()> {
        let this = self.clone();
        std::thread::spawn(move || this.run(&notice))
    }

    fn run(&self, notice: &Notice) {
        let now = Instant::now();
        let queue: VecDeque<Job> = self
            .downstreams
            .iter()
            .map(|to| Job {
                to,
                due: now,
                failures: 0,
                started: now,
            })
            .collect();
        let pending = queue.len();
        let shared = Arc::new((Mutex::new((queue, pending)), Condvar::new()));
        let body = notice.to_bytes();
        let agent = match self.client() {
            Ok(c) => c,
            Err(e) => {
                let why = e.to_string();
                for d in &self.downstreams {
                    (self.observer)(&d.url, &Attempt::GaveUp(why.clone()));
                }
                return;
            }
        };
        std::thread::scope(|s| {
            for _ in 0..self
                .config
                .concurrency
                .clamp(1, self.downstreams.len().max(1))
            {
                s.spawn(|| self.worker(&shared, &agent, &body));
            }
        });
    }

    fn worker(
        &self,
        shared: &(Mutex<(VecDeque<Job<'_>>, usize)>, Condvar),
        agent: &reqwest::blocking::Client,
        body: &[u8],
    ) {
        let (lock, cv) = shared;
        loop {
            let job = {
                let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if g.1 == 0 {
                        cv.notify_all();
                        return;
                    }
                    // The job due first.
                    let next =
                        g.0.iter()
                            .enumerate()
                            .min_by_key(|(_, j)| j.due)
                            .map(|(i, j)| (i, j.due));
                    match next {
                        Some((i, due)) if due <= Instant::now() => {
                            if let Some(j) = g.0.remove(i) {
                                break j;
                            }
                        }
                        Some((_, due)) => {
                            let wait = due.saturating_duration_since(Instant::now());
                            g = cv
                                .wait_timeout(g, wait)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                        None => {
                            g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                }
            };
            let attempt = self.attempt(agent, job.to, body);
            let wait = self.backoff().delay(job.failures);
            let outcome = match attempt {
                Ok(()) => Attempt::Delivered,
                Err((why, permanent)) => {
                    if permanent || job.started.elapsed() + wait > self.config.give_up_after {
                        Attempt::GaveUp(why)
                    } else {
                        Attempt::Failed(why)
                    }
                }
            };
            (self.observer)(&job.to.url, &outcome);
            let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Attempt::Failed(_) => {
                    g.0.push_back(Job {
                        due: Instant::now() + wait,
                        failures: job.failures.saturating_add(1),
                        ..job
                    });
                }
                Attempt::Delivered | Attempt::GaveUp(_) => g.1 -= 1,
            }
            cv.notify_all();
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.config.first_backoff, self.config.max_backoff)
    }

    /// The HTTP client of one cascade: the workspace's stack with the operator's CA
    /// and proxy, one time limit per attempt, no redirects.
    fn client(&self) -> Result<reqwest::blocking::Client, fetch::Error> {
        self.config
            .http
            .blocking_builder(false)?
            .user_agent(fetch::DEFAULT_USER_AGENT)
            .timeout(self.config.timeout)
            .connect_timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| fetch::Error::InvalidUrl {
                url: String::new(),
                reason: format!("cannot build the HTTP client: {e}"),
            })
    }

    /// One POST; `Err((why, permanent))`.
    fn attempt(
        &self,
        agent: &reqwest::blocking::Client,
        to: &Downstream,
        body: &[u8],
    ) -> Result<(), (String, bool)> {
        let url = to.url.as_str();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let sig = to.secret.sign(&self.sender, ts, body);
        let r = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header(SENDER_HEADER, &self.sender)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, &sig)
            .body(body.to_vec())
            .send();
        match r {
            Ok(resp) => {
                let code = resp.status().as_u16();
                match code {
                    200..=299 => Ok(()),
                    // Refusals that a retry cannot change (wrong secret, no push
                    // configured, malformed, too large).
                    400 | 401 | 403 | 404 | 405 | 413 => {
                        Err((format!("{url}: refused with HTTP {code}"), true))
                    }
                    // The proxy: a retry with the same credentials is refused again.
                    407 => Err((self.config.http.proxy_auth_error(url).to_string(), true)),
                    _ => Err((format!("{url}: HTTP {code}"), false)),
                }
            }
            Err(e) => {
                let e = self.config.http.request_error(url, &e);
                // A certificate or the proxy's credentials: retrying cannot help.
                let permanent =
                    matches!(e, fetch::Error::Tls { .. } | fetch::Error::ProxyAuth { .. });
                Err((e.to_string(), permanent))
            }
        }
    }
}
