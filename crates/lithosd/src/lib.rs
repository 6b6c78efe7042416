//! The module set of `lithosd`, also used by its tests: the IM core, in-band registration,
//! generic QoS (`urn:xmpp:qos`), the TUXP thing protocols (registration, operators,
//! execution, location, reports, notifications, friends, concentrators, WebRTC signaling,
//! the LoRa gateway actions), and the demo thing models
//! (`SL-01`, `SC-01`, `STR-01`, `LGW-01`).
//!
//! The set is this package's `[dependencies]`: every `lithos-*` crate listed there is linked
//! (with what it registers) by the one line below. A program gets the whole set by naming
//! this crate: `use lithosd as _;`.

lithos_server::link_extensions!();
