//! Fuzz target `thresholds`: see `wsload_coordinator::fuzzing::thresholds`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_coordinator::fuzzing::thresholds(data));
