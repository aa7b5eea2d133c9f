#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aion::fuzzing::promql_parser(data));
