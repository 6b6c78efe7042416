//! # lithos-core
//!
//! The protocol core of Lithos, an XMPP platform for the Internet of Things: everything that
//! parses and writes XMPP, with no I/O and no async runtime.
//!
//! - [`Jid`]: XMPP addresses (RFC 7622), normalised so that equal addresses compare equal.
//! - [`xml`]: a streaming parser for the restricted XML of RFC 6120, written with nom, with
//!   limits that hold before memory is spent and typed errors mapped to stream errors.
//! - [`Element`]: a namespace-aware tree whose strings share the bytes they were parsed from.
//! - [`stanza`]: typed [`Message`](stanza::Message), [`Presence`](stanza::Presence),
//!   [`Iq`](stanza::Iq) and [`StanzaError`](stanza::StanzaError); [`StreamError`].
//! - [`Payload`]: the trait extension crates implement for their typed payloads.
//! - [`XmlCodec`]: a tokio-util `Decoder`/`Encoder` pair, so a socket is framed in one line.
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::Decoder;
//! use lithos_core::{StreamEvent, XmlCodec, stanza::Stanza};
//!
//! let mut codec = XmlCodec::new();
//! let mut input = BytesMut::from(&b"<stream:stream xmlns='jabber:client' \
//!     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>\
//!     <message to='juliet@example.com' type='chat'><body>Hi!</body></message>"[..]);
//! let Some(StreamEvent::Header(header)) = codec.decode(&mut input)? else { unreachable!() };
//! assert_eq!(header.to.as_deref(), Some("example.com"));
//! let Some(StreamEvent::Element(el)) = codec.decode(&mut input)? else { unreachable!() };
//! let Stanza::Message(msg) = Stanza::try_from(el)? else { unreachable!() };
//! assert_eq!(msg.body().as_deref(), Some("Hi!"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The derives name `::lithos_core`, which this crate uses too.
extern crate self as lithos_core;

pub mod binary;
pub mod codec;
pub mod datetime;
pub mod element;
pub mod extension;
#[doc(hidden)]
pub mod fuzzing;
pub mod jid;
pub mod ns;
pub mod payload;
pub mod stanza;
pub mod stream;
pub mod stream_error;
pub mod xml;

pub use bytestring::ByteString;
pub use codec::{CodecError, StreamCodec, WireFormat, XmlCodec, detect_format};
pub use element::{Attribute, Element, ElementBuilder, Node};
#[doc(hidden)]
pub use inventory;
pub use jid::{BareJid, FullJid, Jid, JidError};
/// Derives [`AttrValue`] for an enum of unit variants.
pub use lithos_derive::AttrValue;
/// Derives [`Payload`] for a struct (see the trait for its attributes).
pub use lithos_derive::Payload;
/// Links every `lithos-*` crate the calling package depends on (see [`extension!`]).
pub use lithos_derive::link_extensions;
pub use payload::{AttrValue, Payload, PayloadError};
pub use stream::{StreamEvent, StreamHeader};
pub use stream_error::{StreamError, StreamErrorCondition};
pub use xml::{Limits, XmlError};
