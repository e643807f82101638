//! Fuzz target `scenario_matcher`: see `wsload_scenario::fuzzing::matcher`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_scenario::fuzzing::matcher(data));
