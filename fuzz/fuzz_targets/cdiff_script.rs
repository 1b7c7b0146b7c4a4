#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cdiff::fuzzing::script(data));
