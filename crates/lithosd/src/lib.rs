//! The module set of `lithosd`, also used by its tests.

/// Links every extension crate this server includes, so their modules are registered.
pub fn link_all() {
    lithos_ping::link();
    lithos_disco::link();
    lithos_version::link();
    lithos_offline::link();
    lithos_roster::link();
    lithos_presence::link();
    lithos_register::link();
}
