//! Fuzz target `plan_toml`: see `wsload_coordinator::fuzzing::plan_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_coordinator::fuzzing::plan_toml(data));
