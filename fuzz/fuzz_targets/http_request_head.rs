#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zerok_core::fuzzing::http_request_head(data));
