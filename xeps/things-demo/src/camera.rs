//! `urn:leps:things:simple-camera`: take a photo (the result names the file).

use lithos_core::Payload;

/// The namespace.
pub const NS: &str = "urn:leps:things:simple-camera";

/// BXMPP table (Lithosphere's sectioned table, `F7 02`).
pub const BXMPP_TABLE: &str = include_str!("../tables/things-demo-camera.props");

/// `<take-photo/>`: as a request, `prepare_time` (seconds); as its result (the same element,
/// as Lithosphere writes it), the photo's file name and URL.
#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "take-photo")]
pub struct TakePhoto {
    /// Seconds to prepare.
    #[payload(attr)]
    pub prepare_time: Option<u32>,
    /// The photo's file name (result).
    #[payload(attr)]
    pub photo_file_name: Option<String>,
    /// Where to fetch it (result).
    #[payload(attr)]
    pub photo_url: Option<String>,
}

impl TakePhoto {
    /// A request.
    pub fn request(prepare_time: u32) -> TakePhoto {
        TakePhoto {
            prepare_time: Some(prepare_time),
            photo_file_name: None,
            photo_url: None,
        }
    }
}
