//! Inputs found by `cargo fuzz`, and the committed seed corpus, run through the same
//! entry points as the fuzz targets (which must never panic).

use cvd_format::fuzzing;

#[test]
fn header_line_with_padding_round_trips_or_is_rejected() {
    // fuzz/artifacts/cvd_header/crash-ba2d0b83...: a padded header given to
    // `Header::parse_line` parsed with a builder ending in spaces that could not be
    // written back.
    let text = "ClamAV-VDB:01 Feb 2024 10-20 -0400:4:2:90:X:X:fuzz";
    let mut raw = [b' '; 512];
    raw[..text.len()].copy_from_slice(text.as_bytes());
    fuzzing::header(&raw);
    assert!(cvd_format::Header::parse_line(&String::from_utf8_lossy(&raw)).is_err());
}

#[test]
fn negative_build_year_is_rejected() {
    // fuzz/artifacts/cvd_header/crash-ef51f745...: `-2024` parsed as a year but could
    // not be written back.
    let line = "ClamAV-VDB:01 Feb -2024 10-20 -0400:3:2:90:X:X:fuzz";
    fuzzing::header(line.as_bytes());
    assert!(cvd_format::Header::parse_line(line).is_err());
}

#[test]
fn seed_corpus_runs_through_every_target() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus");
    let mut seen = 0;
    for (target, run) in [
        ("cvd_header", fuzzing::header as fn(&[u8])),
        ("cvd_info", fuzzing::info),
        ("cvd_container", fuzzing::container),
    ] {
        let dir = std::path::Path::new(root).join(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
            run(&data);
            // Truncations of every seed as well.
            for len in (0..data.len()).step_by(37) {
                run(&data[..len]);
            }
            seen += 1;
        }
    }
    assert!(seen >= 6, "seed corpus missing ({seen} files)");
}

/// The structured path-search target on its committed seeds (a valid chain, the
/// issue-21 loop of same-key CAs, a ring of keys, a deep chain with path lengths) and
/// on every prefix of them: its reference search must agree with the verifier.
#[test]
fn sign_path_seeds_agree_with_the_reference_search() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/sign_path");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        for len in (2..=data.len()).step_by(4) {
            fuzzing::sign_path(&data[..len]);
        }
        seen += 1;
    }
    assert!(seen >= 4, "sign_path seeds missing ({seen} files)");
}
