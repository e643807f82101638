//! Fuzz target `server_frames`: see `wsload_server::fuzzing::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_server::fuzzing::frames(data));
