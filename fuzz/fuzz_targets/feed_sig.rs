#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| feeds::fuzzing::feed_sig(data));
