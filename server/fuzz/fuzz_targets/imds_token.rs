#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolecall_server::fuzzing::imds_token(data));
