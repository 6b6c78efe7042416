//! JID parsing on arbitrary strings (see `lithos_core::fuzzing::jid`).
#![no_main]

libfuzzer_sys::fuzz_target!(|s: &str| lithos_core::fuzzing::jid(s));
