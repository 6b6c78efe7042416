//! The module set of `lithosd`, also used by its tests: the IM core, in-band registration,
//! generic QoS (`urn:xmpp:qos`), the TUXP thing protocols (registration, operators,
//! execution, location, reports, notifications, friends), and the demo thing models
//! (`SL-01`, `SC-01`, `STR-01`).

/// Links every extension crate this server includes, so their modules are registered.
pub fn link_all() {
    lithos_ping::link();
    lithos_disco::link();
    lithos_version::link();
    lithos_offline::link();
    lithos_roster::link();
    lithos_presence::link();
    lithos_register::link();
    lithos_qos::link();
    lithos_tuxp_ibtr::link();
    lithos_tuxp_operator::link();
    lithos_tuxp_execution::link();
    lithos_tuxp_location::link();
    lithos_tuxp_report::link();
    lithos_tuxp_notification::link();
    lithos_tuxp_friends::link();
    lithos_things_demo::link();
}
