//! Fuzz target `plan_fields`: see `wsload_coordinator::fuzzing::plan_fields`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_coordinator::fuzzing::plan_fields(data));
