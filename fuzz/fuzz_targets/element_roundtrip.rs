//! Standalone element parsing and serialisation round trip on arbitrary text (see
//! `lithos_core::fuzzing::element_roundtrip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|s: &str| lithos_core::fuzzing::element_roundtrip(s));
