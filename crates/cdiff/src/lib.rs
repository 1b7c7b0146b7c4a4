//! Parse, verify, apply and generate ClamAV `.cdiff` incremental patches.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
