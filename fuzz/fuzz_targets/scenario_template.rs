//! Fuzz target `scenario_template`: see `wsload_scenario::fuzzing::template`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_scenario::fuzzing::template(data));
