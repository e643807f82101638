//! Fuzz target `server_frame_seq`: see `wsload_server::fuzzing::frame_seq`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_server::fuzzing::frame_seq(data));
