//! The `dns.txt` manifest each generation carries: the versions it holds, for the
//! server and for downstream mirrors (`--no-dns` reads it from upstream).

use std::collections::BTreeMap;
use std::time::SystemTime;

/// Renders the manifest for the given database versions.
pub fn render(versions: &BTreeMap<String, u32>, now: SystemTime) -> String {
    crate::verify::manifest_text(versions, now)
}

/// Parses a manifest into database versions.
pub fn parse(text: &str) -> Result<BTreeMap<String, u32>, String> {
    crate::verify::parse_manifest(text)
}
