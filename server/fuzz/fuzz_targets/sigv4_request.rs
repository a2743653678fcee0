#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolecall_server::fuzzing::sigv4_request(data));
