//! Fuzz target `agent_events`: see `wsload_agent::fuzzing::events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_agent::fuzzing::events(data));
