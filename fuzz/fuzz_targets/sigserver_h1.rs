#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigserver::fuzzing::h1_connection(data));
