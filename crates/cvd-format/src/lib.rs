//! Read, verify, unpack and build ClamAV CVD/CLD database containers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
