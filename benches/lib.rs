//! Shared helpers for the benchmark binaries in this directory.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

/// Where benchmarks cache their generated data: `<target>/bench-data`.
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

/// A tiny deterministic PRNG (xorshift64*): reproducible data without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is mapped to a valid state).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `len` deterministic, nearly incompressible bytes from `seed` (xorshift): stand-in
/// `.cvd`/cdiff bodies for benchmarks that only move bytes.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends one `.hdb`-style signature line (`md5:size:Name-<tag>-<n>`) with a random
/// hash and size to `line` (cleared first). Random hashes make the text compress about
/// as well as a real `daily` body (gzip output about 40-45% of the text).
pub fn signature_line(line: &mut Vec<u8>, rng: &mut Rng, tag: &str, n: u64) {
    line.clear();
    for _ in 0..2 {
        let r = rng.next_u64();
        for i in 0..16 {
            line.push(HEX[((r >> (i * 4)) & 15) as usize]);
        }
    }
    let size = rng.next_u64() % 5_000_000;
    // Writing to a Vec cannot fail.
    let _ = writeln!(line, ":{size}:Bench.{tag}-{n}-0");
}

/// Writes at least `bytes` bytes of signature lines (see [`signature_line`]) to `out`;
/// returns the number of lines.
pub fn write_signatures(
    out: &mut impl Write,
    bytes: u64,
    seed: u64,
    tag: &str,
) -> std::io::Result<u64> {
    let mut rng = Rng::new(seed);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut line = Vec::with_capacity(96);
    while written < bytes {
        signature_line(&mut line, &mut rng, tag, n);
        out.write_all(&line)?;
        written += line.len() as u64;
        n += 1;
    }
    Ok(n)
}
