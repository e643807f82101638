//! Fuzz target `plan_proto`: see `wsload_coordinator::fuzzing::plan_proto`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_coordinator::fuzzing::plan_proto(data));
