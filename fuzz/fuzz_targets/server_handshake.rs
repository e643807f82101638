//! Fuzz target `server_handshake`: see `wsload_server::fuzzing::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsload_server::fuzzing::handshake(data));
