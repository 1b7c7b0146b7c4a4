#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dns_versions::fuzzing::txt_record(data));
