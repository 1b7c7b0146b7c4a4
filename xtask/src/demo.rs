//! `cargo xtask demo`: the self-contained demo (until the mirror exists).
//!
//! 1. generates a DEMO-ONLY RSA key pair at run time (nothing secret is committed);
//! 2. builds `demo.cvd` (version 1) signed with it: legacy RSA signature in the header,
//!    PSS-signed `demo.info`;
//! 3. verifies it with the demo public key and prints every check that passed;
//! 4. inspects it: header fields, members with size and SHA-256;
//! 5. flips one byte of a copy in three places (header, gzip body, legacy signature)
//!    and shows each damaged copy being rejected, with the failed check and reason;
//! 6. shows that the official ClamAV keys (the default trust set) reject the demo file.
//!
//! Files are written to `target/demo/`. Nothing outside the repository is read.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use cvd_format::{CvdBuilder, KeySet, Report, SigningKey, SigningKeys, VerifyOptions};

const DEMO_HDB: &str = "\
# MD5 signatures: md5:size:name
44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar-Test-File
e2fc714c4727ee9395f324cd2e7f331f:4:Demo.abcd
";
const DEMO_NDB: &str = "\
Demo.Hello-World:0:*:48656c6c6f2c20576f726c6421
Demo.Mirror-Test:0:0:636c616d61762d6d6972726f72
";
const COPYING: &str = "DEMO database built by `cargo xtask demo` with a throw-away key.\n";

use cvd_format::hex;

fn print_report(report: &Report) {
    let h = &report.header;
    println!("   database      {}", report.name);
    println!("   version       {}", h.version);
    println!("   signatures    {}", h.signatures);
    println!("   f-level       {}", h.flevel);
    println!(
        "   build time    {}",
        h.build_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| h.build_time.to_string())
    );
    println!("   builder       {}", h.builder);
    println!(
        "   md5           {}",
        h.md5.map(|m| hex(&m)).unwrap_or_else(|| "X".into())
    );
    println!(
        "   body          {} bytes ({:?})",
        report.body_size, report.compression
    );
    println!("   members:");
    for m in &report.members {
        println!(
            "     {:<14} {:>5} bytes  sha256 {}",
            m.name,
            m.size,
            hex(&m.sha256)
        );
    }
}

/// Runs the demo, writing into `<root>/target/demo`.
pub fn run(root: &Path) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    println!("== 1. generating a DEMO-ONLY 2048-bit RSA key (never use it for anything else)");
    let key = SigningKey::generate(2048).context("generating the demo key")?;
    let trust = KeySet::single(key.public_key());

    println!(
        "== 2. building demo.cvd v1 (gzip tar body, legacy RSA signature, PSS-signed demo.info)"
    );
    let mut cvd = Cursor::new(Vec::new());
    CvdBuilder::new("demo", 1)
        .flevel(90)
        .builder("xtask-demo")
        .member("COPYING", COPYING.as_bytes().to_vec())
        .member("demo.hdb", DEMO_HDB.as_bytes().to_vec())
        .member("demo.ndb", DEMO_NDB.as_bytes().to_vec())
        .write_cvd(&mut cvd, &SigningKeys::single(key))
        .context("building demo.cvd")?;
    let bytes = cvd.into_inner();
    let path = dir.join("demo.cvd");
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    println!("   wrote {} ({} bytes)", path.display(), bytes.len());

    println!(
        "== 3. verifying {} with the demo public key",
        path.display()
    );
    let opts = VerifyOptions::new().keys(trust.clone());
    let report = cvd_format::verify_file(&path, &opts).context("the demo database must verify")?;
    let c = &report.checks;
    println!("   header parsed (512 bytes, all nine fields)");
    println!("   md5 of the body ............ {:?}", c.md5);
    println!("   legacy RSA signature ....... {:?}", c.legacy_signature);
    println!("   demo.info DSIG (RSA-PSS) ... {:?}", c.info_signature);
    println!("   demo.info header line ...... {:?}", c.info_header);
    println!("   demo.info member list ...... {:?}", c.info_entries);
    println!("   => OK");

    println!("== 4. inspecting demo.cvd");
    print_report(&report);

    println!("== 5. damaged copies (one flipped byte each) are rejected");
    let body_mid = 512 + (bytes.len() - 512) / 2;
    let dsig_pos = header_field_offset(&bytes, 6)
        .context("locating the signature field of the demo header")?;
    for (what, pos) in [
        (
            "version digit in the header",
            header_field_offset(&bytes, 2).unwrap_or(0),
        ),
        ("a byte in the middle of the gzip body", body_mid),
        ("a character of the legacy signature", dsig_pos + 3),
    ] {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x01;
        let name = format!("demo-damaged-{pos}.cvd");
        let damaged_path = dir.join(&name);
        std::fs::write(&damaged_path, &damaged)
            .with_context(|| format!("writing {}", damaged_path.display()))?;
        match cvd_format::verify_file(&damaged_path, &opts) {
            Ok(_) => bail!("{name}: the damaged copy ({what}) was accepted"),
            Err(e) => {
                let check = e
                    .failed_check()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "local error".into());
                println!("   {name} (flipped {what}, offset {pos}):");
                println!("     REJECTED by check `{check}`: {e}");
            }
        }
    }

    println!("== 6. the official ClamAV keys (the default trust set) do not accept the demo key");
    match cvd_format::verify_file(&path, &VerifyOptions::new()) {
        Ok(_) => bail!("demo.cvd verified with the official keys"),
        Err(e) => println!("   REJECTED: {e}"),
    }
    println!("== demo finished: files are in {}", dir.display());
    Ok(())
}

/// Byte offset of header field `index` (0-based, `:`-separated) in a container.
fn header_field_offset(bytes: &[u8], index: usize) -> Option<usize> {
    let header = bytes.get(..512)?;
    if index == 0 {
        return Some(0);
    }
    header
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b':')
        .nth(index - 1)
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_offsets() {
        let mut header = b"ClamAV-VDB:01 Jan 2026 00-00 +0000:7:1:90:X:X:me:0".to_vec();
        header.resize(512, b' ');
        assert_eq!(header_field_offset(&header, 0), Some(0));
        assert_eq!(header_field_offset(&header, 2), Some(35));
        assert_eq!(header[35], b'7');
        assert_eq!(header_field_offset(&header, 9), None);
        assert_eq!(header_field_offset(b"short", 1), None);
    }
}
