#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aion::fuzzing::rule_file_loader(data));
