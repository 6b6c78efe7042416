//! # lithos-things-demo
//!
//! The demo protocols of the Lithosphere reference (§3.8, §2.5) and three models built from
//! them:
//!
//! | Model | What | Actions | Events | Data |
//! |---|---|---|---|---|
//! | `SL-01` | simple light | `flash`, `turn-on`, `turn-off`, edge built-ins | `switch-state-changed` | – |
//! | `SC-01` | simple camera | `take-photo`, `take-video`, edge built-ins | – | – |
//! | `STR-01` | temperature reporter | edge built-ins | – | `celsius-degree` |
//! | `LGW-01` | LoRa gateway, a concentrator (LAN nodes behind it) | `change-working-mode`, `reset-dac-service`, `reset-node`, `sync-nodes`, `pull-lan-follows`, edge built-ins | – | – |

pub mod camera;
pub mod light;
pub mod temperature;

use lithos_tuxp_things::{Protocol, ThingModel};
// The gateway model's actions: its BXMPP table registers with this crate.
use lithos_tuxp_lora_gateway as _;

/// Every action of a demo model: its own and the edge built-ins.
macro_rules! actions {
    ($($p:expr),* $(,)?) => {
        &[$($p,)* Protocol::new(lithos_tuxp_edge::NS, "stop"), Protocol::new(lithos_tuxp_edge::NS, "shutdown-system")]
    };
}

/// A simple light.
pub const SIMPLE_LIGHT: ThingModel = ThingModel {
    name: "SL-01",
    description: "simple light: flash, on, off; reports switch changes",
    actions: actions![
        Protocol::new(light::NS, "flash"),
        Protocol::new(light::NS, "turn-on"),
        Protocol::new(light::NS, "turn-off"),
    ],
    events: &[Protocol::new(light::NS, "switch-state-changed")],
    data: &[],
    concentrator: false,
};

/// A simple camera.
pub const SIMPLE_CAMERA: ThingModel = ThingModel {
    name: "SC-01",
    description: "simple camera: takes photos and videos",
    actions: actions![
        Protocol::new(camera::NS, "take-photo"),
        Protocol::new(camera::NS, "take-video"),
    ],
    events: &[],
    data: &[],
    concentrator: false,
};

/// A temperature reporter.
pub const TEMPERATURE_REPORTER: ThingModel = ThingModel {
    name: "STR-01",
    description: "temperature reporter: reports degrees Celsius",
    actions: actions![],
    events: &[],
    data: &[Protocol::new(temperature::NS, "celsius-degree")],
    concentrator: false,
};

/// `lithos_tuxp_concentrator::NS`.
const CONCENTRATOR: &str = "urn:leps:tuxp:concentrator";

/// A LoRa gateway: a concentrator, with LAN nodes 1 to 255 behind it.
pub const LORA_GATEWAY: ThingModel = ThingModel {
    name: "LGW-01",
    description: "LoRa gateway: a concentrator for up to 255 LAN nodes",
    actions: actions![
        Protocol::new(lithos_tuxp_lora_gateway::NS, "change-working-mode"),
        Protocol::new(lithos_tuxp_lora_gateway::NS, "reset-dac-service"),
        // The concentrator's namespace, written out: its crate's tests link this one.
        Protocol::new(CONCENTRATOR, "reset-node"),
        Protocol::new(CONCENTRATOR, "sync-nodes"),
        Protocol::new(CONCENTRATOR, "pull-lan-follows"),
    ],
    events: &[],
    data: &[],
    concentrator: true,
};

lithos_core::extension! {
    table: light::BXMPP_TABLE,
    table: camera::BXMPP_TABLE,
    table: temperature::BXMPP_TABLE,
    model: SIMPLE_LIGHT,
    model: SIMPLE_CAMERA,
    model: TEMPERATURE_REPORTER,
    model: LORA_GATEWAY,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_registered_and_ids_parse() {
        for m in [&SIMPLE_LIGHT, &SIMPLE_CAMERA, &TEMPERATURE_REPORTER] {
            assert_eq!(lithos_tuxp_things::model(m.name), Some(m));
        }
        let id = lithos_tuxp_things::ThingId::parse("SL-01-0A1B2C3D").unwrap();
        assert!(
            id.model()
                .supports_action(&lithos_core::Payload::into_element(light::Flash {
                    repeat: 2
                }))
        );
        assert!(
            !id.model()
                .supports_action(&lithos_core::Payload::into_element(
                    camera::TakePhoto::request(1)
                ))
        );
        assert!(lithos_tuxp_things::ThingId::parse("SC-01-0A1B2C3D").is_ok());
    }
}
