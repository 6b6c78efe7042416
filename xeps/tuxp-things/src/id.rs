//! Thing ids.

use crate::model::ThingModel;

/// A thing id: `<MODEL>-<8 characters>` for a model linked into the program.
///
/// ```
/// use lithos_tuxp_things::{Protocol, ThingId, ThingModel};
/// static LAMP: ThingModel = ThingModel {
///     name: "DOC-LAMP",
///     description: "a documentation lamp",
///     actions: &[Protocol::new("urn:example:lamp", "on")],
///     events: &[],
///     data: &[],
///     concentrator: false,
/// };
/// let id = ThingId::parse_with("DOC-LAMP-0A1B2C3D", &[&LAMP]).unwrap();
/// assert_eq!(id.model().name, "DOC-LAMP");
/// assert!(ThingId::parse_with("DOC-LAMP-0A1B", &[&LAMP]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThingId {
    id: String,
    model: &'static ThingModel,
}

/// Why a string is not a thing id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThingIdError {
    /// No linked model's name, followed by `-`, starts the id.
    #[error("{0:?} does not start with a known model name")]
    UnknownModel(String),
    /// The part after the model name is not eight characters (letters, digits).
    #[error("{0:?}: a thing id is the model name, a dash and eight letters or digits")]
    Malformed(String),
}

impl ThingId {
    /// Parses against the models linked into the program.
    pub fn parse(s: &str) -> Result<ThingId, ThingIdError> {
        Self::parse_with(s, &crate::model::models())
    }

    /// Parses against `models`. The longest matching model name wins (Lithosphere took the
    /// first in hash order, which is ambiguous when one name prefixes another).
    pub fn parse_with(s: &str, models: &[&'static ThingModel]) -> Result<ThingId, ThingIdError> {
        let model = models
            .iter()
            .filter(|m| {
                s.strip_prefix(m.name)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|m| m.name.len())
            .ok_or_else(|| ThingIdError::UnknownModel(s.to_string()))?;
        let serial = &s[model.name.len() + 1..];
        // Lithosphere accepts any eight characters; letters and digits keep ids usable as
        // JID local parts without escaping.
        if serial.len() != 8 || !serial.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ThingIdError::Malformed(s.to_string()));
        }
        Ok(ThingId {
            id: s.to_string(),
            model,
        })
    }

    /// A fresh id for `model` with a random serial (upper-case hex), as device makers do.
    pub fn generate(model: &'static ThingModel) -> ThingId {
        ThingId {
            id: format!("{}-{:08X}", model.name, rand::random::<u32>()),
            model,
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Its model.
    pub fn model(&self) -> &'static ThingModel {
        self.model
    }

    /// The thing's name: its JID local part (`<thing-name>@<domain>`). In Lithos, as in
    /// Lithosphere Lite, the id itself, lower-cased as JID local parts are.
    pub fn thing_name(&self) -> String {
        self.id.to_lowercase()
    }
}

impl std::fmt::Display for ThingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    static SL: ThingModel = ThingModel {
        name: "SL",
        description: "",
        actions: &[],
        events: &[],
        data: &[],
        concentrator: false,
    };
    static SL01: ThingModel = ThingModel {
        name: "SL-01",
        description: "",
        actions: &[Protocol::new("urn:x", "flash")],
        events: &[],
        data: &[],
        concentrator: false,
    };

    #[test]
    fn longest_model_name_wins() {
        let models = [&SL, &SL01];
        assert_eq!(
            ThingId::parse_with("SL-01-0A1B2C3D", &models)
                .unwrap()
                .model()
                .name,
            "SL-01"
        );
        assert_eq!(
            ThingId::parse_with("SL-0A1B2C3D", &models)
                .unwrap()
                .model()
                .name,
            "SL"
        );
        assert_eq!(
            ThingId::parse_with("XX-0A1B2C3D", &models),
            Err(ThingIdError::UnknownModel("XX-0A1B2C3D".into()))
        );
        for bad in [
            "SL-01-0A1B2C3",
            "SL-01-0A1B2C3D4",
            "SL-01-0A1B2C3!",
            "SL-01",
        ] {
            assert!(ThingId::parse_with(bad, &models).is_err(), "{bad}");
        }
        let g = ThingId::generate(&SL01);
        assert_eq!(ThingId::parse_with(g.as_str(), &models).unwrap(), g);
        assert_eq!(
            ThingId::parse_with("SL-01-0A1B2C3D", &models)
                .unwrap()
                .thing_name(),
            "sl-01-0a1b2c3d"
        );
    }
}
