#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigserver::fuzzing::dns_packet(data));
