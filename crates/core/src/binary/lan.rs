//! Helpers for gateways talking to LAN nodes (LoRa): LAN frames, trace ids, LoRa addresses.
//!
//! A **LAN frame** is the BXMPP document of `<message><protocol/></message>` without the three
//! bytes `60 00 01` that open the message (name, no attributes, one child): the protocol
//! element is the frame's root.
//!
//! ```
//! use lithos_core::binary::{Vocabulary, lan::{LanFrame, TraceId, TraceKind}};
//! # let mut vocab = Vocabulary::linked().unwrap();
//! # vocab.load("t", "0xf80x04=urn:leps:tuxp:actuator\n0x05=lan-execution\n0x06=trace-id\n\
//! #   0xf70x01=urn:leps:things:simple-light\n0x00=flash\n0x01=repeat\n").unwrap();
//! let id = TraceId::new(0, TraceKind::Request, (11 * 3600 + 23 * 60 + 52) * 1000 + 997);
//! let exec = lithos_core::Element::builder("lan-execution", "urn:leps:tuxp:actuator")
//!     .attr("trace-id", id.to_value())
//!     .child(lithos_core::Element::builder("flash", "urn:leps:things:simple-light").attr("repeat", "3").build())
//!     .build();
//! let frame = LanFrame::encode(&vocab, &exec).unwrap();
//! assert_eq!(
//!     frame.as_bytes(),
//!     [0xFF, 0xF8, 0x04, 0x05, 0x01, 0x01, 0x06, 0xFB, 0x00, 0x0B, 0x17, 0xD3, 0xE5, 0xFE,
//!      0xF7, 0x01, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x33, 0xFF]
//! );
//! assert_eq!(frame.decode(&vocab).unwrap(), exec);
//! ```

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};

use super::Vocabulary;
use super::encode::raw_bytes;
use super::error::BxmppError;
use crate::element::Element;
use crate::ns;

/// The bytes a message wrapper with no attributes and one child takes after the document
/// start: `message`, 0 attributes, 1 child.
const MESSAGE_WRAPPER: [u8; 3] = [0x60, 0x00, 0x01];

/// A LAN frame: a BXMPP document whose root is the protocol element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanFrame(Bytes);

impl LanFrame {
    /// Encodes a protocol element as a LAN frame.
    pub fn encode(vocab: &Vocabulary, protocol: &Element) -> Result<LanFrame, BxmppError> {
        let msg = Element::builder("message", ns::JABBER_CLIENT)
            .child(protocol.clone())
            .build();
        let doc = super::encode_document(vocab, &msg)?;
        LanFrame::from_document(&doc)
    }

    /// Strips the message wrapper from a full document.
    pub fn from_document(doc: &[u8]) -> Result<LanFrame, BxmppError> {
        if doc.len() < 5 || doc[1..4] != MESSAGE_WRAPPER {
            return Err(BxmppError::BadFrameStart(doc.get(1).copied().unwrap_or(0)));
        }
        let mut out = BytesMut::with_capacity(doc.len() - 3);
        out.put_u8(doc[0]);
        out.put_slice(&doc[4..]);
        Ok(LanFrame(out.freeze()))
    }

    /// A frame received from a LAN node.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> LanFrame {
        LanFrame(bytes.into())
    }

    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The full document (wrapper re-inserted), as a server would receive it.
    pub fn to_document(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.0.len() + 3);
        if let Some((&first, rest)) = self.0.split_first() {
            out.put_u8(first);
            out.put_slice(&MESSAGE_WRAPPER);
            out.put_slice(rest);
        }
        out.freeze()
    }

    /// Decodes the protocol element.
    pub fn decode(&self, vocab: &Vocabulary) -> Result<Element, BxmppError> {
        let msg = super::decode_document(vocab, self.to_document())?;
        msg.children().next().cloned().ok_or(BxmppError::Truncated)
    }

    /// A typed protocol as a LAN frame, with the keyword tables linked into the program.
    pub fn of<P: crate::Payload>(protocol: P) -> Result<LanFrame, BxmppError> {
        LanFrame::encode(&Vocabulary::global(), &protocol.into_element())
    }

    /// The frame read as the typed protocol `P`, if it is one.
    pub fn read<P: crate::Payload>(&self) -> Option<P> {
        P::from_element(self.decode(&Vocabulary::global()).ok()?).ok()
    }
}

/// What a trace id marks: a request, or the answer to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// A request (type bits 0).
    Request,
    /// A successful answer (type bits 1).
    Response,
    /// An error answer (type bits 2).
    Error,
}

/// The 5-byte trace id of LAN requests and answers: LAN id, kind and time of day.
///
/// Layout: byte 0 LAN id; byte 1 kind (high 2 bits) and hours (low 6 bits); byte 2 minutes;
/// byte 3 seconds (high 6 bits) and bits 9..8 of the milliseconds; byte 4 bits 7..0 of the
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 5]);

/// Why a value is not a trace id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceIdError {
    /// Not `$B[...]` holding exactly five bytes.
    #[error("a trace id is $B[...] holding five bytes")]
    Malformed,
    /// Type bits 3, or a time field out of range.
    #[error("the trace id's kind or time is out of range")]
    OutOfRange,
}

impl TraceId {
    /// A trace id for `lan_id`, of `kind`, at `ms_since_midnight` (taken modulo one day).
    pub fn new(lan_id: u8, kind: TraceKind, ms_since_midnight: u32) -> TraceId {
        let ms = ms_since_midnight % 86_400_000;
        let hours = (ms / 3_600_000) as u8;
        let minutes = (ms / 60_000 % 60) as u8;
        let seconds = (ms / 1000 % 60) as u8;
        let millis = (ms % 1000) as u16;
        TraceId([
            lan_id,
            kind_bits(kind) << 6 | hours,
            minutes,
            seconds << 2 | (millis >> 8) as u8,
            millis as u8,
        ])
    }

    /// Checks the kind bits and the time fields.
    pub fn from_bytes(b: [u8; 5]) -> Result<TraceId, TraceIdError> {
        let id = TraceId(b);
        if b[1] >> 6 == 3 || b[1] & 0x3F > 23 || b[2] > 59 || b[3] >> 2 > 59 || id.millis() > 999 {
            return Err(TraceIdError::OutOfRange);
        }
        Ok(id)
    }

    /// The LAN id (0 for the gateway itself).
    pub fn lan_id(&self) -> u8 {
        self.0[0]
    }
    /// The kind.
    pub fn kind(&self) -> TraceKind {
        match self.0[1] >> 6 {
            0 => TraceKind::Request,
            1 => TraceKind::Response,
            _ => TraceKind::Error,
        }
    }
    /// Milliseconds within the second.
    pub fn millis(&self) -> u16 {
        ((self.0[3] & 0x03) as u16) << 8 | self.0[4] as u16
    }
    /// Milliseconds since midnight.
    pub fn time_of_day_ms(&self) -> u32 {
        let h = (self.0[1] & 0x3F) as u32;
        let m = self.0[2] as u32;
        let s = (self.0[3] >> 2) as u32;
        ((h * 60 + m) * 60 + s) * 1000 + self.millis() as u32
    }
    /// The id an answer of `kind` carries: this one with the kind bits changed.
    pub fn answer(&self, kind: TraceKind) -> TraceId {
        let mut b = self.0;
        b[1] = kind_bits(kind) << 6 | (b[1] & 0x3F);
        TraceId(b)
    }
    /// True when `other` answers this id (or the reverse): all bytes equal but the kind bits.
    pub fn matches(&self, other: &TraceId) -> bool {
        self.0[0] == other.0[0]
            && self.0[1] & 0x3F == other.0[1] & 0x3F
            && self.0[2..] == other.0[2..]
    }
    /// The attribute value form, `$B[base64]`.
    pub fn to_value(&self) -> String {
        use base64::Engine;
        format!(
            "$B[{}]",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
    /// Reads the attribute value form.
    pub fn from_value(v: &str) -> Result<TraceId, TraceIdError> {
        let bytes = raw_bytes(v).ok_or(TraceIdError::Malformed)?;
        let arr: [u8; 5] = bytes.try_into().map_err(|_| TraceIdError::Malformed)?;
        TraceId::from_bytes(arr)
    }
}

fn kind_bits(k: TraceKind) -> u8 {
    match k {
        TraceKind::Request => 0,
        TraceKind::Response => 1,
        TraceKind::Error => 2,
    }
}

/// Raw bytes in an attribute: BXMPP carries them marked `FB` (no text escaping beyond its
/// own); their XML form is Basalt's `$B[base64]`. LoRa-DAC addresses, for one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawBytes(pub Vec<u8>);

impl crate::payload::AttrValue for RawBytes {
    fn parse_attr(s: &bytestring::ByteString) -> Option<Self> {
        raw_bytes(s).map(RawBytes)
    }
    fn into_attr(self) -> bytestring::ByteString {
        use base64::Engine;
        bytestring::ByteString::from(format!(
            "$B[{}]",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        ))
    }
}

impl crate::payload::AttrValue for TraceId {
    fn parse_attr(s: &bytestring::ByteString) -> Option<Self> {
        TraceId::from_value(s).ok()
    }
    fn into_attr(self) -> bytestring::ByteString {
        bytestring::ByteString::from(self.to_value())
    }
}

/// A LoRa address: high and low address bytes and a channel (0..=31); text form
/// `la$<high>,<low>:<channel>` in decimal.
///
/// ```
/// use lithos_core::binary::lan::LoraAddress;
/// let a: LoraAddress = "la$239,238:31".parse().unwrap();
/// assert_eq!(a.to_bytes(), [0xEF, 0xEE, 0x1F]);
/// assert_eq!(a.to_string(), "la$239,238:31");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoraAddress {
    /// High address byte.
    pub high: u8,
    /// Low address byte (the LAN id on the node side).
    pub low: u8,
    /// Channel, 0..=31.
    pub channel: u8,
}

/// Why text is not a LoRa address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a LoRa address (la$<high>,<low>:<channel>, channel 0..=31): {0:?}")]
pub struct LoraAddressError(pub String);

impl LoraAddress {
    /// An address from its bytes (the channel is not checked: see
    /// [`from_bytes`](Self::from_bytes)).
    pub const fn new(high: u8, low: u8, channel: u8) -> LoraAddress {
        LoraAddress { high, low, channel }
    }

    /// The broadcast destination on `channel`: `FF FF` reaches every radio tuned to it (the
    /// AS32 modules' fixed-transmission mode).
    pub const fn broadcast(channel: u8) -> LoraAddress {
        LoraAddress::new(0xFF, 0xFF, channel)
    }

    /// Whether this is a broadcast destination.
    pub const fn is_broadcast(&self) -> bool {
        self.high == 0xFF && self.low == 0xFF
    }

    /// Whether a frame sent to this destination reaches a radio tuned to `radio`: the same
    /// channel, and the same address or broadcast.
    pub const fn reaches(&self, radio: LoraAddress) -> bool {
        self.channel == radio.channel
            && (self.is_broadcast() || (self.high == radio.high && self.low == radio.low))
    }

    /// The three bytes sent on the air.
    pub fn to_bytes(&self) -> [u8; 3] {
        [self.high, self.low, self.channel]
    }
    /// From the three bytes; the channel must be 0..=31.
    pub fn from_bytes(b: [u8; 3]) -> Result<LoraAddress, LoraAddressError> {
        if b[2] > 31 {
            return Err(LoraAddressError(format!("{b:02x?}")));
        }
        Ok(LoraAddress {
            high: b[0],
            low: b[1],
            channel: b[2],
        })
    }
}

impl fmt::Display for LoraAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "la${},{}:{}", self.high, self.low, self.channel)
    }
}

impl FromStr for LoraAddress {
    type Err = LoraAddressError;
    fn from_str(s: &str) -> Result<LoraAddress, LoraAddressError> {
        let bad = || LoraAddressError(s.to_string());
        let rest = s.strip_prefix("la$").ok_or_else(bad)?;
        let (addr, ch) = rest.split_once(':').ok_or_else(bad)?;
        let (hi, lo) = addr.split_once(',').ok_or_else(bad)?;
        LoraAddress::from_bytes([
            hi.parse().map_err(|_| bad())?,
            lo.parse().map_err(|_| bad())?,
            ch.parse().map_err(|_| bad())?,
        ])
        .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_a_frame_reaches() {
        let dac = LoraAddress::new(0xEF, 0xEE, 0x1F);
        assert!(dac.reaches(dac));
        assert!(
            !dac.reaches(LoraAddress::new(0xEF, 0xEE, 0x17)),
            "another channel"
        );
        assert!(
            !dac.reaches(LoraAddress::new(0xEF, 0xEF, 0x1F)),
            "another address"
        );
        assert!(LoraAddress::broadcast(0x1F).reaches(dac));
        assert!(!LoraAddress::broadcast(0x17).reaches(dac));
    }

    #[test]
    fn trace_ids() {
        let t = TraceId::new(
            0,
            TraceKind::Request,
            (11 * 3600 + 23 * 60 + 52) * 1000 + 997,
        );
        assert_eq!(t.0, [0x00, 0x0B, 0x17, 0xD3, 0xE5]);
        let r = t.answer(TraceKind::Response);
        assert_eq!(r.0, [0x00, 0x4B, 0x17, 0xD3, 0xE5]);
        assert!(t.matches(&r));
        assert_eq!(r.kind(), TraceKind::Response);
        assert_eq!(t.answer(TraceKind::Error).kind(), TraceKind::Error);
        assert!(!t.matches(&TraceId::new(1, TraceKind::Request, t.time_of_day_ms())));
        assert_eq!(t.time_of_day_ms(), (11 * 3600 + 23 * 60 + 52) * 1000 + 997);
        assert_eq!(TraceId::from_value(&t.to_value()), Ok(t));
        assert_eq!(
            TraceId::from_value("$B[AAA=]"),
            Err(TraceIdError::Malformed)
        );
        assert_eq!(
            TraceId::from_bytes([0, 0xC0, 0, 0, 0]),
            Err(TraceIdError::OutOfRange)
        );
        assert_eq!(
            TraceId::from_bytes([0, 24, 0, 0, 0]),
            Err(TraceIdError::OutOfRange)
        );
    }

    #[test]
    fn lora_addresses() {
        for bad in [
            "la$1,2",
            "la$1:2",
            "la$300,1:2",
            "la$1,2:32",
            "lb$1,2:3",
            "la$-1,2:3",
        ] {
            assert!(bad.parse::<LoraAddress>().is_err(), "{bad}");
        }
        let a: LoraAddress = "la$0,5:23".parse().unwrap();
        assert_eq!(a.to_bytes(), [0, 5, 0x17]);
    }

    #[test]
    fn wrapper_is_required() {
        assert!(LanFrame::from_document(&[0xFF, 0x58, 0x00, 0x01, 0xFF]).is_err());
        let f = LanFrame::from_document(&[0xFF, 0x60, 0x00, 0x01, 0xF9, 0x05, 0x00, 0xFF]).unwrap();
        assert_eq!(f.as_bytes(), [0xFF, 0xF9, 0x05, 0x00, 0xFF]);
        assert_eq!(
            &f.to_document()[..],
            [0xFF, 0x60, 0x00, 0x01, 0xF9, 0x05, 0x00, 0xFF]
        );
    }
}
