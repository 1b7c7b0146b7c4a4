#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mirror_core::fuzzing::plan_invariants(data));
