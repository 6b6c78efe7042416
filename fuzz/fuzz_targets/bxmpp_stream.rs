//! The BXMPP stream decoder on arbitrary bytes split at arbitrary points (see
//! `lithos_core::fuzzing::bxmpp_stream`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lithos_core::fuzzing::bxmpp_stream(data));

include!("reference_tables.rs");
