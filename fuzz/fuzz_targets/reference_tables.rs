// Included by the BXMPP targets (not a target itself): the extension tables of the
// Lithosphere reference, so the fuzzer reaches namespaced content.
lithos_core::extension! {
    table: concat!(
        include_str!("../../crates/core/tests/tables/ext_ping.props"), "\n",
        include_str!("../../crates/core/tests/tables/ext_thing.props"), "\n",
        include_str!("../../crates/core/tests/tables/ext_light.props"), "\n",
        include_str!("../../crates/core/tests/tables/ext_actuator.props"), "\n",
        include_str!("../../crates/core/tests/tables/ext_lora-dac.props"), "\n",
        include_str!("../../crates/core/tests/tables/ext_sensor.props"), "\n",
    ),
}
