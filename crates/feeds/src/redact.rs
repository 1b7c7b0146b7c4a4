//! Keeping a feed's token secret: URLs for messages, the token itself, and log events
//! of the HTTP stack that would carry it.
//!
//! A provider such as SecuriteInfo puts a personal token in the URL path. This crate
//! builds the real URL only to hand it to `fetch`; everything it reports holds a
//! [`RedactedUrl`], where the token reads `<token>`. `fetch`'s own messages (its error
//! strings and log events name the URL) are redacted before they are stored or let
//! through: see [`with_redacted_logs`].

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

/// What a token reads as in every message.
pub const TOKEN_MARK: &str = "<token>";

/// The placeholder in a feed's URL that the token replaces.
pub const TOKEN_PLACEHOLDER: &str = "{token}";

/// A URL that is safe to print, log, serve in status pages and traces: a feed's token
/// is replaced by `<token>`.
///
/// ```
/// let u = feeds::RedactedUrl::from_template("https://example.org/get/{token}/x.ndb");
/// assert_eq!(u.to_string(), "https://example.org/get/<token>/x.ndb");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// The redacted form of a configured URL template (its `{token}` placeholder
    /// replaced by `<token>`).
    pub fn from_template(template: &str) -> RedactedUrl {
        RedactedUrl(template.replace(TOKEN_PLACEHOLDER, TOKEN_MARK))
    }

    /// The URL as text (token replaced).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({:?})", self.0)
    }
}

/// A feed's token: never displayed (`Debug` is `Token(..)`), only substituted into a
/// URL right before a request, and redacted out of any text that may contain it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Checks and wraps a token: 1–512 characters from `A-Z a-z 0-9 - _ . ~` (it goes
    /// into a URL path unescaped, so nothing that could change the URL's structure).
    pub(crate) fn new(text: &str) -> Result<Token, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the token file is empty".into());
        }
        if t.len() > 512 {
            return Err("the token is longer than 512 characters".into());
        }
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        {
            // Not even the offending character is named: it is part of the secret.
            return Err("the token has characters other than A-Z a-z 0-9 - _ . ~".into());
        }
        Ok(Token(t.to_owned()))
    }

    /// `text` with every occurrence of the token replaced by `<token>`.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&self.0, TOKEN_MARK)
    }

    /// The URL template with the token substituted (the real URL; never stored).
    pub(crate) fn fill(&self, template: &str) -> String {
        template.replace(TOKEN_PLACEHOLDER, &self.0)
    }
}

/// Runs `f` (which calls `fetch`) with the thread's log events filtered: an event whose
/// fields contain the token is replaced by one with the same level whose text has the
/// token redacted (target `feeds::redacted`, field `origin` = the original target,
/// emitted when `f` returns); every other event and every span goes through unchanged
/// to the dispatcher that was in effect. Without a token, `f` runs as is.
///
/// `fetch` logs the URL it requests on retries, failover and rate limiting, and the
/// HTTP client below it may log request lines; this keeps them while keeping the token
/// out. (It covers events emitted on the calling thread, which is where the blocking
/// `fetch` API does its work.)
pub(crate) fn with_redacted_logs<T>(token: Option<&Token>, f: impl FnOnce() -> T) -> T {
    let Some(token) = token else {
        return f();
    };
    let inner = tracing::dispatcher::get_default(Dispatch::clone);
    let held = Arc::new(Mutex::new(Vec::new()));
    let wrapper = Dispatch::new(Redacting {
        inner,
        token: token.clone(),
        held: Arc::clone(&held),
    });
    let out = tracing::dispatcher::with_default(&wrapper, f);
    // Emitted here, not from inside the dispatch (the thread's dispatcher is borrowed
    // there): after `f`, in order, with the dispatcher that was in effect.
    let held = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
    for (level, origin, text) in held {
        match level {
            Level::ERROR => tracing::error!(target: "feeds::redacted", origin, "{text}"),
            Level::WARN => tracing::warn!(target: "feeds::redacted", origin, "{text}"),
            Level::INFO => tracing::info!(target: "feeds::redacted", origin, "{text}"),
            Level::DEBUG => tracing::debug!(target: "feeds::redacted", origin, "{text}"),
            _ => tracing::trace!(target: "feeds::redacted", origin, "{text}"),
        }
    }
    out
}

/// Redacted events waiting to be emitted: level, original target, text.
type Held = Arc<Mutex<Vec<(Level, &'static str, String)>>>;

struct Redacting {
    inner: Dispatch,
    token: Token,
    held: Held,
}

/// Collects an event's fields as text.
struct Collect {
    message: String,
    fields: String,
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl Subscriber for Redacting {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }
    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        self.inner.new_span(span)
    }
    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.inner.record(span, values)
    }
    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.inner.record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        let mut c = Collect {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut c);
        let text = format!("{}{}", c.message, c.fields);
        let redacted = self.token.redact(&text);
        if redacted == text {
            self.inner.event(event);
            return;
        }
        let m = event.metadata();
        self.held.lock().unwrap_or_else(|e| e.into_inner()).push((
            *m.level(),
            m.target(),
            redacted,
        ));
    }
    fn enter(&self, span: &span::Id) {
        self.inner.enter(span)
    }
    fn exit(&self, span: &span::Id) {
        self.inner.exit(span)
    }
    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner.clone_span(id)
    }
    fn try_close(&self, id: span::Id) -> bool {
        self.inner.try_close(id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let t = Token::new(" s3cr3t-T0ken_1.~\n").unwrap();
        assert_eq!(format!("{t:?}"), "Token(..)");
        assert_eq!(
            t.fill("https://h/x/{token}/"),
            "https://h/x/s3cr3t-T0ken_1.~/"
        );
        assert_eq!(t.redact("a s3cr3t-T0ken_1.~ b"), "a <token> b");
        for bad in ["", "  ", "a/b", "a?b", "a b", "a%2f", "tok#x"] {
            let e = Token::new(bad).unwrap_err();
            if !bad.trim().is_empty() {
                assert!(!e.contains(bad.trim()), "{e}");
            }
        }
        assert!(Token::new(&"x".repeat(513)).is_err());
    }
}
