#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zerok_core::fuzzing::handshake_responder(data));
