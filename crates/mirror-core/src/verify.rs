//! Verification glue: full checks of downloaded files through `cvd-format` and `cdiff`.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, io_err};

/// Reads the version from the 512-byte header of a `.cvd` file.
pub(crate) fn cvd_file_version(path: &Path) -> Result<u32, Error> {
    let mut f = std::fs::File::open(path).map_err(io_err(path, "open"))?;
    let mut head = [0u8; 512];
    f.read_exact(&mut head)
        .map_err(io_err(path, "read header of"))?;
    // TODO(cvd-format): replace with cvd_format::Header once it lands.
    let text = std::str::from_utf8(&head).map_err(|_| Error::Layout {
        path: path.to_path_buf(),
        reason: "header is not ASCII".into(),
    })?;
    let mut fields = text.split(':');
    let version = (fields.next() == Some("ClamAV-VDB"))
        .then(|| fields.nth(1))
        .flatten()
        .and_then(|v| v.parse().ok());
    version.ok_or_else(|| Error::Layout {
        path: path.to_path_buf(),
        reason: "not a CVD header with a version".into(),
    })
}
