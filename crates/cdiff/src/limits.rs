//! Explicit limits on everything that comes from outside.

/// Size and count limits for patches and scripts. The defaults are generous for the
/// official `daily`/`main`/`bytecode` databases and small enough to stop a
/// decompression bomb.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted `.cdiff` file (compressed), in bytes.
    pub max_patch_len: u64,
    /// Largest decompressed script, in bytes (also caps the declared script length).
    pub max_script_len: u64,
    /// Most lines in one script.
    pub max_script_lines: usize,
    /// Longest script line, in bytes (the reference's `#LSIZE` maximum is 10 MiB).
    pub max_line_len: usize,
    /// Largest database file a patch may produce, in bytes.
    pub max_file_len: u64,
    /// Most patches in one chain.
    pub max_chain_len: usize,
    /// Most times one script may rewrite one file: a `CLOSE` after `DEL`/`XCHG`, or a
    /// `MOVE` from or to it. Each rewrite copies the whole file, so without this bound
    /// a script of `n` tiny `OPEN`/`DEL`/`CLOSE` blocks costs `n` × the file size
    /// (quadratic in the script). Official scripts open each file once.
    pub max_rewrites_per_file: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_patch_len: 64 << 20,
            max_script_len: 256 << 20,
            max_script_lines: 10_000_000,
            max_line_len: 10 << 20,
            max_file_len: 1 << 30,
            max_chain_len: 10_000,
            max_rewrites_per_file: 16,
        }
    }
}

impl Limits {
    /// The default limits (same as [`Limits::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Limits::max_patch_len`].
    pub fn max_patch_len(mut self, bytes: u64) -> Self {
        self.max_patch_len = bytes;
        self
    }

    /// Sets [`Limits::max_script_len`].
    pub fn max_script_len(mut self, bytes: u64) -> Self {
        self.max_script_len = bytes;
        self
    }

    /// Sets [`Limits::max_script_lines`].
    pub fn max_script_lines(mut self, lines: usize) -> Self {
        self.max_script_lines = lines;
        self
    }

    /// Sets [`Limits::max_line_len`].
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.max_line_len = bytes;
        self
    }

    /// Sets [`Limits::max_file_len`].
    pub fn max_file_len(mut self, bytes: u64) -> Self {
        self.max_file_len = bytes;
        self
    }

    /// Sets [`Limits::max_rewrites_per_file`].
    pub fn max_rewrites_per_file(mut self, rewrites: usize) -> Self {
        self.max_rewrites_per_file = rewrites;
        self
    }

    /// Sets [`Limits::max_chain_len`].
    pub fn max_chain_len(mut self, patches: usize) -> Self {
        self.max_chain_len = patches;
        self
    }
}
