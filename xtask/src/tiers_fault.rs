//! `cargo xtask tiers --fault master-down`: the master (tier 1) dies, the origin keeps
//! publishing (the case of an enterprise with many repositories below one master).
//!
//! The first new version crosses the whole network as usual; then tier 1 is killed
//! (SIGKILL) and every further version is published by the origin alone. Tier-2
//! mirrors are configured with tier 1 first and the origin as failover
//! (`--upstream t1 --upstream origin`), and since their upstream's notices stop with
//! it, they also watch the version TXT record (`--dns-watch-secs`, one DNS query per
//! period, here the origin's own record from `sigserver --dns-listen`): a changed
//! version starts a sync, tier 1 refuses the connection, the origin serves it, tier 2
//! publishes and pushes to tier 3 at once. What bounds tier 3's delay is therefore the
//! DNS-watch period ([`DNS_WATCH_SECS`]) plus one sync per tier, not the poll interval.
//!
//! Last line: `tiers: master-down tier3 p50=<s> max=<s>`.

use std::collections::BTreeMap;

/// How often tier 2 asks the TXT record.
pub(crate) const DNS_WATCH_SECS: u64 = 5;
/// The origin's record name.
const ZONE: &str = "current.cvd.tiers.test";

/// Extra arguments of the origin's `sigserver`: it answers its own version record.
pub(crate) fn origin_args(origin_ip: &str) -> Vec<String> {
    vec![
        "--dns-listen".into(),
        format!("{origin_ip}:53"),
        "--dns-zone".into(),
        ZONE.into(),
    ]
}

/// A tier-2 mirror's arguments: the origin as failover upstream after tier 1, and the
/// origin's TXT record watched instead of `--no-dns`.
pub(crate) fn tier2_args(args: &mut Vec<String>, origin_ip: &str) {
    args.retain(|a| a != "--no-dns");
    args.extend([
        "--upstream".into(),
        format!("http://{origin_ip}:8000"),
        "--dns-server".into(),
        format!("{origin_ip}:53"),
        "--dns-name".into(),
        ZONE.into(),
        "--dns-watch-secs".into(),
        DNS_WATCH_SECS.to_string(),
    ]);
}

/// Kills tier 1 (its `Child` is killed and reaped on drop).
pub(crate) fn kill_master(t1: Option<e2e::Child>) {
    drop(t1);
    println!("tiers: master-down: tier 1 killed; the origin keeps publishing");
}

/// Prints the figures and the last line.
pub(crate) fn report(samples: &BTreeMap<u8, Vec<f64>>, o: &crate::tiers::Opts) {
    let _ = o;
    println!();
    println!(
        "seconds from the origin's publish to each mirror serving the new version, tier 1 dead \
         (tier 2: DNS watch every {DNS_WATCH_SECS}s, origin as failover upstream)"
    );
    println!("tier  samples   p50     max");
    for tier in 2..=3u8 {
        let v = samples.get(&tier).cloned().unwrap_or_default();
        println!(
            "{tier:>4}  {:>7}  {:>6.2}  {:>6.2}",
            v.len(),
            crate::tiers::pct(&v, 50.0),
            crate::tiers::pct(&v, 100.0)
        );
    }
    let t3 = samples.get(&3).cloned().unwrap_or_default();
    println!(
        "tiers: master-down tier3 p50={:.2} max={:.2}",
        crate::tiers::pct(&t3, 50.0),
        crate::tiers::pct(&t3, 100.0)
    );
}
