//! The streaming XML decoder on arbitrary bytes split at arbitrary points (see
//! `lithos_core::fuzzing::xml_stream` for the properties checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lithos_core::fuzzing::xml_stream(data));
