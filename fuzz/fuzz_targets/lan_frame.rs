//! LAN frames as a gateway reads them off the radio: decoding never panics, what decodes
//! encodes and reads back equal, and trace ids survive their text and answer forms (see
//! `lithos_core::fuzzing::lan_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lithos_core::fuzzing::lan_frame(data));

include!("reference_tables.rs");
