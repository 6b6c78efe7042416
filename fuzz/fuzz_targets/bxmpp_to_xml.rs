//! Everything the BXMPP decoder accepts must be acceptable as XML, and read back equal (see
//! `lithos_core::fuzzing::bxmpp_to_xml`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lithos_core::fuzzing::bxmpp_to_xml(data));

// The extension tables of the Lithosphere reference, so the fuzzer reaches namespaced content.
lithos_core::inventory::submit! {
    lithos_core::binary::TableRegistration {
        name: "fuzz-reference-tables",
        properties: concat!(
            include_str!("../../crates/core/tests/tables/ext_ping.props"), "\n",
            include_str!("../../crates/core/tests/tables/ext_thing.props"), "\n",
            include_str!("../../crates/core/tests/tables/ext_light.props"), "\n",
            include_str!("../../crates/core/tests/tables/ext_actuator.props"), "\n",
            include_str!("../../crates/core/tests/tables/ext_lora-dac.props"), "\n",
            include_str!("../../crates/core/tests/tables/ext_sensor.props"), "\n",
        ),
    }
}
