//! Integration tests of the publisher, against a real SeaweedFS and a directory.
#![allow(clippy::unwrap_used)]

mod s3;
