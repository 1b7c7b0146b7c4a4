//! `/status`: the status page, rendered from a [`StatusDoc`].
//!
//! One self-contained HTML page: inline CSS and SVG, no external assets, readable
//! without JavaScript (a terminal browser shows the same tables); one small inline
//! script only reloads the page every minute. Hand-written with one escaping
//! function, [`esc`], through which every text from outside passes (database,
//! mirror and downstream names, URLs, error texts, downstream answers): a page this
//! small does not need a template engine, and one escaping rule is easy to audit.

use std::fmt::Write as _;

use crate::status_page::{NetworkNode, StatusDoc};

/// Escapes text for HTML element content and quoted attribute values.
///
/// ```
/// assert_eq!(
///     sigserver::status_html::esc("<b a=\"x\">'&'</b>"),
///     "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
/// );
/// ```
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
th{background:#eee}.ok{color:#060}.bad{color:#a00}\
.current{background:#c8f0c8}.behind_one{background:#fff3b0}.behind_long{background:#ffc9a0}.unreachable{background:#f4a0a0}\
ul.tree{list-style:none;padding-left:1.2em}ul.tree li{margin:.2em 0}.node{padding:0 .4em;border-radius:3px}\
small{color:#555}";

/// A Unix time as `YYYY-MM-DD hh:mm:ss UTC (n s ago)`.
fn when(t: Option<i64>, now: i64) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) => {
            let ts = time::OffsetDateTime::from_unix_timestamp(t)
                .map(|d| {
                    format!(
                        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                        d.year(),
                        u8::from(d.month()),
                        d.day(),
                        d.hour(),
                        d.minute(),
                        d.second()
                    )
                })
                .unwrap_or_else(|_| t.to_string());
            format!("{ts} ({})", ago(now.saturating_sub(t)))
        }
    }
}

fn ago(secs: i64) -> String {
    match secs {
        s if s < 0 => "in the future".to_owned(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn list(v: &[u32]) -> String {
    if v.is_empty() {
        return "none".to_owned();
    }
    let first = v.first().copied().unwrap_or(0);
    let last = v.last().copied().unwrap_or(0);
    if v.len() > 1 && u64::from(last - first) + 1 == v.len() as u64 {
        format!("{first}–{last}")
    } else {
        v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Renders the page.
pub fn render(doc: &StatusDoc) -> String {
    let now = doc.generated_at;
    let mut h = String::with_capacity(16 * 1024);
    let name = doc.mirror.as_deref().unwrap_or("ClamAV mirror");
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} status</title><style>{STYLE}</style></head><body>",
        esc(name)
    );
    let _ = writeln!(h, "<h1>{} status</h1>", esc(name));
    let (cls, word) = if doc.ready.ready {
        ("ok", "Ready")
    } else {
        ("bad", "Not ready")
    };
    let _ = writeln!(
        h,
        "<p id=\"readiness\"><strong class=\"{cls}\">{word}</strong>: {}<br>\
         <small>/ready answers {}. It answers 503 when the last successful sync is too old, or \
         when a version known upstream or announced by a notice is not served here {} s later.</small></p>",
        esc(&doc.ready.reason),
        if doc.ready.ready { "200" } else { "503" },
        doc.ready.lag_secs
    );
    let _ = writeln!(
        h,
        "<p>Generation <code>{}</code>; last sync attempt {}; last successful sync {}; last publish {}.</p>",
        esc(doc.generation.as_deref().unwrap_or("none")),
        when(doc.last_attempt, now),
        when(doc.last_success, now),
        when(doc.last_publish, now)
    );
    if let Some(e) = &doc.last_error {
        let _ = writeln!(h, "<p class=\"bad\">Last error: {}</p>", esc(e));
    }

    h.push_str(
        "<h2>Databases</h2>\n<table id=\"databases\"><tr><th>Database</th><th>Served version</th>\
         <th>Build time</th><th>Newest known</th><th>Behind since</th><th>Last success</th>\
         <th>Cdiffs held</th><th>Unproven</th><th>.sign</th><th>Error</th></tr>\n",
    );
    for (db, d) in &doc.databases {
        let newest = match (&d.newest_known, &d.newest_source) {
            (Some(v), Some(s)) => format!("{v} <small>({})</small>", esc(s)),
            (Some(v), None) => v.to_string(),
            _ => "-".to_owned(),
        };
        let signed = format!(
            ".cvd {}, cdiffs {}/{}",
            if d.cvd_signed { "yes" } else { "no" },
            d.cdiffs_signed,
            d.cdiffs.len()
        );
        let _ = writeln!(
            h,
            "<tr><td class=\"db\">{}</td><td class=\"version\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{} ({} proven)</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(db),
            opt(d.version),
            d.build_time
                .map_or_else(|| "-".to_owned(), |t| when(Some(t), now)),
            newest,
            d.behind_since
                .map_or_else(|| "-".to_owned(), |t| when(Some(t), now)),
            when(d.last_success, now),
            list(&d.cdiffs),
            d.cdiffs.len().saturating_sub(d.cdiffs_unproven.len()),
            list(&d.cdiffs_unproven),
            signed,
            esc(d.last_error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");

    if !doc.feeds.is_empty() {
        h.push_str(
            "<h2>Third-party feeds</h2>\n<table id=\"feeds\"><tr><th>Feed</th><th>File</th>\
             <th>Published</th><th>Verified by</th><th>Last success</th><th>Error</th></tr>\n",
        );
        for (feed, f) in &doc.feeds {
            for (file, st) in &f.files {
                let verified = if f.unverified {
                    "UNVERIFIED".to_owned()
                } else {
                    esc(st.verification.as_deref().unwrap_or("-"))
                };
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(feed),
                    esc(file),
                    if st.published { "yes" } else { "no" },
                    verified,
                    when(st.last_success, now),
                    esc(st.last_error.as_deref().unwrap_or(""))
                );
            }
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Trace of the served versions</h2>\n<ul id=\"trace\">\n");
    let mut any = false;
    for (db, d) in &doc.databases {
        let Some(t) = &d.trace else { continue };
        any = true;
        let hops: Vec<String> = t
            .hops
            .iter()
            .map(|hop| {
                format!(
                    "{} <small>{}</small>",
                    esc(&hop.mirror),
                    when(i64::try_from(hop.published_ms / 1000).ok(), now)
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<li>{} {}: {}{}{}</li>",
            esc(db),
            t.version,
            if hops.is_empty() {
                "polled here".to_owned()
            } else {
                hops.join(" → ")
            },
            t.fetched_from
                .as_deref()
                .map(|f| format!(" <small>fetched from {}</small>", esc(f)))
                .unwrap_or_default(),
            t.propagation_ms
                .map(|ms| format!(" <small>({:.1} s from origin)</small>", ms as f64 / 1000.0))
                .unwrap_or_default()
        );
    }
    if !any {
        h.push_str("<li>no trace recorded</li>\n");
    }
    h.push_str("</ul>\n");

    h.push_str("<h2>Upstreams</h2>\n");
    if doc.upstreams.is_empty() {
        h.push_str(
            "<p>None configured here (a separate sync process, or a plain directory).</p>\n",
        );
    } else {
        h.push_str("<table id=\"upstreams\"><tr><th>#</th><th>URL</th><th>State</th></tr>\n");
        for u in &doc.upstreams {
            let state = match (u.cooldown_until, u.served_last_sync) {
                (Some(t), _) => format!("in cool-down until {}", when(Some(t), now)),
                (None, true) => "served the last sync".to_owned(),
                (None, false) if u.order == 0 => "primary".to_owned(),
                (None, false) => "failover".to_owned(),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                u.order + 1,
                esc(&u.url),
                state
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Downstreams</h2>\n");
    if doc.downstreams.is_empty() {
        h.push_str("<p>No push notices sent from here.</p>\n");
    } else {
        h.push_str(
            "<table id=\"downstreams\"><tr><th>Push URL</th><th>Last notice</th><th>Delivered</th>\
             <th>Failing</th><th>Given up</th><th>Last error</th></tr>\n",
        );
        for d in &doc.downstreams {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.url),
                when(d.last_success, now),
                d.delivered,
                d.consecutive_failures,
                d.given_up,
                esc(d.last_error.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Network</h2>\n");
    if doc.network.is_empty() {
        h.push_str("<p>No downstream subtree (no downstreams to poll).</p>\n");
    } else {
        h.push_str(
            "<p><span class=\"node current\">current</span> <span class=\"node behind_one\">behind by one</span> \
             <span class=\"node behind_long\">behind longer than the lag</span> \
             <span class=\"node unreachable\">unreachable</span></p>\n<ul class=\"tree\" id=\"network\">\n",
        );
        let _ = writeln!(
            h,
            "<li><span class=\"node current\">{} (this mirror)</span>",
            esc(name)
        );
        tree(&mut h, &doc.network, now);
        h.push_str("</li></ul>\n");
    }

    h.push_str("<h2>Propagation</h2>\n");
    chart(&mut h, doc);
    let _ = writeln!(
        h,
        "<p><small>Made {}. <a href=\"status.json\">status.json</a> (format {}).</small></p>\n\
         <script>setTimeout(function(){{location.reload()}},60000)</script>\n</body></html>",
        when(Some(now), now),
        doc.format
    );
    h
}

fn tree(h: &mut String, nodes: &[NetworkNode], now: i64) {
    h.push_str("<ul class=\"tree\">\n");
    for n in nodes {
        let versions: Vec<String> = n
            .versions
            .iter()
            .map(|(db, v)| format!("{} {v}", esc(db)))
            .collect();
        let label = n.mirror.as_deref().unwrap_or("?");
        let detail = match &n.error {
            Some(e) => format!("unreachable: {}", esc(e)),
            None => format!(
                "{}; {}; last sync {}{}; polled {}",
                versions.join(", "),
                match n.ready {
                    Some(true) => "ready",
                    Some(false) => "not ready",
                    None => "readiness unknown",
                },
                when(n.last_success, now),
                n.behind_since
                    .map(|t| format!("; behind since {}", when(Some(t), now)))
                    .unwrap_or_default(),
                when(n.polled_at, now)
            ),
        };
        let _ = write!(
            h,
            "<li data-state=\"{}\"><span class=\"node {}\">{}</span> <small>{} — {}</small>",
            esc(&n.state),
            esc(&n.state),
            esc(label),
            esc(&n.url),
            detail
        );
        if !n.children.is_empty() {
            tree(h, &n.children, now);
        }
        h.push_str("</li>\n");
    }
    h.push_str("</ul>\n");
}

/// The SVG chart: the histogram's per-bucket counts, then seconds from origin to here
/// per traced version.
fn chart(h: &mut String, doc: &StatusDoc) {
    let p = &doc.propagation;
    let (w, ht, pad) = (560.0_f64, 160.0_f64, 30.0_f64);
    if p.count > 0 && !p.buckets.is_empty() {
        let mut prev = 0u64;
        let per: Vec<(f64, u64)> = p
            .buckets
            .iter()
            .map(|b| {
                let n = b.count.saturating_sub(prev);
                prev = b.count;
                (b.le, n)
            })
            .collect();
        let max = per.iter().map(|x| x.1).max().unwrap_or(1).max(1) as f64;
        let bw = (w - pad) / per.len() as f64;
        let _ = write!(
            h,
            "<p>{} updates, mean {:.1} s from origin to here.</p>\
             <svg id=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" \
             role=\"img\" aria-label=\"propagation histogram\">",
            p.count,
            p.sum_secs / p.count as f64,
            ht + 20.0
        );
        for (i, (le, n)) in per.iter().enumerate() {
            let bh = (*n as f64 / max) * (ht - 20.0);
            let x = pad + i as f64 * bw;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#4a7\"><title>≤ {le} s: {n}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">≤{le}</text>",
                ht - bh,
                bw - 2.0,
                x + bw / 2.0,
                ht + 12.0
            );
        }
        h.push_str("</svg>\n");
    } else {
        h.push_str("<p>No propagation measured yet (versions learned by polling have no origin time).</p>\n");
    }
    if !p.versions.is_empty() {
        let max = p
            .versions
            .iter()
            .map(|v| v.propagation_ms)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let bw = ((w - pad) / p.versions.len() as f64).min(40.0);
        let _ = write!(
            h,
            "<svg id=\"versions\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" \
             role=\"img\" aria-label=\"seconds from origin per version\">",
            ht + 20.0
        );
        for (i, v) in p.versions.iter().enumerate() {
            let bh = (v.propagation_ms as f64 / max) * (ht - 20.0);
            let x = pad + i as f64 * bw;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#47a\"><title>{} {}: {:.1} s over {} hops</title></rect>",
                ht - bh,
                bw - 2.0,
                esc(&v.db),
                v.version,
                v.propagation_ms as f64 / 1000.0,
                v.hops
            );
        }
        h.push_str("</svg>\n<table id=\"versions-table\"><tr><th>Database</th><th>Version</th><th>Seconds from origin</th><th>Hops</th></tr>\n");
        for v in &p.versions {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td></tr>",
                esc(&v.db),
                v.version,
                v.propagation_ms as f64 / 1000.0,
                v.hops
            );
        }
        h.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_page::DatabaseView;

    #[test]
    fn outside_text_is_escaped_everywhere() {
        let mut doc = StatusDoc {
            mirror: Some("<script>m</script>".into()),
            ..Default::default()
        };
        doc.databases.insert(
            "<img src=x>".into(),
            DatabaseView {
                version: Some(3),
                last_error: Some("\"><b>e</b>".into()),
                ..Default::default()
            },
        );
        doc.network.push(NetworkNode {
            mirror: Some("<i>child</i>".into()),
            url: "http://h/\"x".into(),
            state: "current\"><b".into(),
            ..Default::default()
        });
        let html = render(&doc);
        for raw in [
            "<script>m",
            "<img src=x>",
            "<b>e</b>",
            "<i>child",
            "\"x",
            "current\"><b",
        ] {
            assert!(!html.contains(raw), "{raw} unescaped");
        }
        assert!(html.contains("&lt;img src=x&gt;"));
        assert!(html.contains("&lt;i&gt;child&lt;/i&gt;"));
    }

    #[test]
    fn chart_has_a_bar_per_bucket_and_per_version() {
        use crate::status_page::{BucketView, VersionPropagation};
        let mut doc = StatusDoc::default();
        assert!(!render(&doc).contains("<svg"));
        doc.propagation.buckets = [(1.0, 1), (5.0, 3), (60.0, 3)]
            .into_iter()
            .map(|(le, count)| BucketView { le, count })
            .collect();
        doc.propagation.count = 3;
        doc.propagation.sum_secs = 7.5;
        doc.propagation.versions = (5..9)
            .map(|v| VersionPropagation {
                db: "daily".into(),
                version: v,
                propagation_ms: u64::from(v) * 1000,
                hops: 3,
            })
            .collect();
        let html = render(&doc);
        let hist = &html[html.find("<svg id=\"histogram\"").unwrap()..];
        let hist = &hist[..hist.find("</svg>").unwrap()];
        assert_eq!(hist.matches("<rect").count(), 3);
        // Non-cumulative counts: 1, 2, 0.
        assert!(hist.contains("≤ 5 s: 2"), "{hist}");
        assert!(hist.contains("≤ 60 s: 0"), "{hist}");
        assert!(html.contains("mean 2.5 s"));
        let per = &html[html.find("<svg id=\"versions\"").unwrap()..];
        let per = &per[..per.find("</svg>").unwrap()];
        assert_eq!(per.matches("<rect").count(), 4);
        assert!(per.contains("daily 8: 8.0 s over 3 hops"), "{per}");
    }

    #[test]
    fn version_lists_are_ranges_when_contiguous() {
        assert_eq!(list(&[]), "none");
        assert_eq!(list(&[2, 3, 4]), "2–4");
        assert_eq!(list(&[2, 4]), "2, 4");
    }
}
