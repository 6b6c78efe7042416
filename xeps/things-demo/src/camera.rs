//! `urn:leps:things:simple-camera`: take a photo (the result names the file).

use lithos_core::Payload;

/// The namespace.
pub const NS: &str = "urn:leps:things:simple-camera";

/// BXMPP table (Lithosphere's sectioned table, `F7 02`).
pub const BXMPP_TABLE: &str = "\
0xf70x02=urn:leps:things:simple-camera
0x00=take-photo
0x01=prepare-time
0x02=photo-file-name
0x03=photo-url
0x04=take-video
0x05=duration-time
0x06=video-name
0x07=video-url
";

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
