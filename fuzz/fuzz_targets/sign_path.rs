#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cvd_format::fuzzing::sign_path(data));
