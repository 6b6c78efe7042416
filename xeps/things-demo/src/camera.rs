//! `urn:leps:things:simple-camera`: take a photo (the result names the file).

use lithos_core::{Element, Payload, PayloadError};

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

lithos_core::inventory::submit! {
    lithos_core::binary::TableRegistration { name: "lithos-things-demo/camera", properties: BXMPP_TABLE }
}

/// `<take-photo/>`: as a request, `prepare_time` (seconds); as its result (the same element,
/// as Lithosphere writes it), the photo's file name and URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakePhoto {
    /// Seconds to prepare.
    pub prepare_time: Option<u32>,
    /// The photo's file name (result).
    pub photo_file_name: Option<String>,
    /// Where to fetch it (result).
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

impl Payload for TakePhoto {
    const NS: &'static str = NS;
    const NAME: &'static str = "take-photo";
    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let prepare_time = match el.attr("prepare-time") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| PayloadError::InvalidAttribute {
                element: "take-photo",
                attribute: "prepare-time",
                value: v.to_string(),
            })?),
        };
        Ok(TakePhoto {
            prepare_time,
            photo_file_name: el.attr("photo-file-name").map(str::to_string),
            photo_url: el.attr("photo-url").map(str::to_string),
        })
    }
    fn into_element(self) -> Element {
        Element::builder(Self::NAME, Self::NS)
            .opt_attr("prepare-time", self.prepare_time.map(|t| t.to_string()))
            .opt_attr("photo-file-name", self.photo_file_name)
            .opt_attr("photo-url", self.photo_url)
            .build()
    }
}
