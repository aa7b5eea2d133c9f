#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aion::fuzzing::chunk_decoder(data));
