//! Everything the BXMPP decoder accepts must be acceptable as XML, and read back equal (see
//! `lithos_core::fuzzing::bxmpp_to_xml`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lithos_core::fuzzing::bxmpp_to_xml(data));

include!("reference_tables.rs");
