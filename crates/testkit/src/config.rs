//! The effective configuration the binaries print (`sigupdate config`,
//! `sigserver --print-config`): one `key = value    # source` line per setting, tables
//! (`[custom.NAME]`) after them, and `# key is not set    # default` for an optional
//! setting without a value.

use std::collections::BTreeMap;

/// One row of a precedence table: (file text, environment variables, flags, key,
/// expected value as printed, expected source as printed).
pub type Precedence<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [&'a str],
    &'a str,
    &'a str,
    &'a str,
);

/// Parses the printed configuration into `key` (`table.key` inside a table) →
/// (value as printed, source; `(not set)` for a setting without a value). Fails when
/// the text without its comments is not valid TOML: the output is promised to be a
/// configuration file.
pub fn parse_printed(text: &str) -> Result<BTreeMap<String, (String, String)>, String> {
    let mut out = BTreeMap::new();
    let mut stripped = String::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('[') {
            table = format!("{}.", t.trim_end_matches(']'));
            stripped.push_str(line);
            stripped.push('\n');
            continue;
        }
        let Some((setting, source)) = line.split_once("    # ") else {
            continue;
        };
        let (key, value) = match setting.split_once(" = ") {
            Some((k, v)) => {
                stripped.push_str(setting);
                stripped.push('\n');
                (k.to_owned(), v.to_owned())
            }
            None => (
                setting
                    .trim_start_matches("# ")
                    .trim_end_matches(" is not set")
                    .to_owned(),
                "(not set)".to_owned(),
            ),
        };
        out.insert(format!("{table}{key}"), (value, source.to_owned()));
    }
    toml::from_str::<toml::Table>(&stripped).map_err(|e| format!("{e}\n{stripped}"))?;
    Ok(out)
}
