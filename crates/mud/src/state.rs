//! What a node keeps across restarts (mud's `saveThingInfo`): where DAC put it, and whether
//! the gateway confirmed it. One line of text in a file:
//! `configured 5 la$0,5:23 la$239,239:23` (state, LAN id, address, uplink).

use std::path::Path;

use lithos_core::binary::lan::LoraAddress;

/// What DAC gave a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Its LAN id behind the gateway (the low byte of its address).
    pub lan_id: u8,
    /// Its address from now on (`00 <lan-id> 17`).
    pub address: LoraAddress,
    /// Where it sends its answers, notifications and reports.
    pub uplink: LoraAddress,
}

/// A node's DAC state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// No address: introduce itself.
    #[default]
    Initial,
    /// Allocated, not yet confirmed: after a restart, ask `is-configured`.
    Allocated(Allocation),
    /// A thing now.
    Configured(Allocation),
}

impl State {
    /// The allocation, if any.
    pub fn allocation(&self) -> Option<Allocation> {
        match self {
            State::Initial => None,
            State::Allocated(a) | State::Configured(a) => Some(*a),
        }
    }

    /// As the state file's line.
    pub fn to_line(&self) -> String {
        match self {
            State::Initial => "initial\n".to_string(),
            State::Allocated(a) => format!("allocated {} {} {}\n", a.lan_id, a.address, a.uplink),
            State::Configured(a) => {
                format!("configured {} {} {}\n", a.lan_id, a.address, a.uplink)
            }
        }
    }

    /// From the state file's line; `None` if it is not one.
    pub fn from_line(line: &str) -> Option<State> {
        let mut words = line.split_whitespace();
        let kind = words.next()?;
        if kind == "initial" {
            return Some(State::Initial);
        }
        let a = Allocation {
            lan_id: words.next()?.parse().ok()?,
            address: words.next()?.parse().ok()?,
            uplink: words.next()?.parse().ok()?,
        };
        if a.lan_id == 0 || words.next().is_some() {
            return None;
        }
        match kind {
            "allocated" => Some(State::Allocated(a)),
            "configured" => Some(State::Configured(a)),
            _ => None,
        }
    }

    /// Reads the state file: [`State::Initial`] when there is none; an error when it is not
    /// one (a node does not silently forget its address).
    pub async fn load(path: &Path) -> std::io::Result<State> {
        match tokio::fs::read_to_string(path).await {
            Ok(s) => State::from_line(&s).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a node state: {s:?}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::Initial),
            Err(e) => Err(e),
        }
    }

    /// Writes the state file (a temporary file renamed over it).
    pub async fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, self.to_line()).await?;
        tokio::fs::rename(&tmp, path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let a = Allocation {
            lan_id: 5,
            address: LoraAddress::new(0, 5, 0x17),
            uplink: LoraAddress::new(0xEF, 0xEF, 0x17),
        };
        for s in [State::Initial, State::Allocated(a), State::Configured(a)] {
            assert_eq!(State::from_line(&s.to_line()), Some(s));
        }
        assert_eq!(
            State::Configured(a).to_line(),
            "configured 5 la$0,5:23 la$239,239:23\n"
        );
        for bad in [
            "",
            "configured",
            "configured 0 la$0,0:23 la$1,1:1",
            "allocated 5 x y",
            "odd 5 la$0,5:23 la$239,239:23",
        ] {
            assert_eq!(State::from_line(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_file_round_trips_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.state");
        assert_eq!(State::load(&path).await.unwrap(), State::Initial);
        let s = State::Allocated(Allocation {
            lan_id: 9,
            address: LoraAddress::new(0, 9, 0x17),
            uplink: LoraAddress::new(0xEF, 0xEF, 0x18),
        });
        s.save(&path).await.unwrap();
        assert_eq!(State::load(&path).await.unwrap(), s);
        std::fs::write(&path, "garbage").unwrap();
        assert!(State::load(&path).await.is_err());
    }
}
