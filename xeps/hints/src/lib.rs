//! # lithos-hints
//!
//! XEP-0334 (Message Processing Hints): empty elements a sender adds to a message to say how
//! servers should treat it. Message carbons (`lithos-carbons`) honour `no-copy`; message
//! archives honour `no-store`, `no-permanent-store` and `store`.
//!
//! ```
//! use lithos_core::Element;
//! use lithos_hints::Hint;
//! let m = Element::parse("<message xmlns='jabber:client'><no-copy xmlns='urn:xmpp:hints'/></message>")?;
//! assert!(Hint::NoCopy.is_on(&m));
//! assert!(!Hint::NoStore.is_on(&m));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use lithos_core::Element;

/// The namespace.
pub const NS: &str = "urn:xmpp:hints";

// Code `F0 1C`.
lithos_core::extension! { table_file: "hints.props" }

/// A processing hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Do not store the message in a permanent archive.
    NoPermanentStore,
    /// Do not store it at all (neither offline nor in an archive).
    NoStore,
    /// Do not copy it to other resources (carbons).
    NoCopy,
    /// Store it even if it would not be stored otherwise.
    Store,
}

impl Hint {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            Hint::NoPermanentStore => "no-permanent-store",
            Hint::NoStore => "no-store",
            Hint::NoCopy => "no-copy",
            Hint::Store => "store",
        }
    }

    /// Whether `message` carries this hint.
    pub fn is_on(self, message: &Element) -> bool {
        message.has_child(self.name(), NS)
    }

    /// The hint's element, to add to a message.
    pub fn element(self) -> Element {
        Element::bare(self.name(), NS)
    }
}
