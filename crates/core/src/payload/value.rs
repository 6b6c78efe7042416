//! [`AttrValue`]: the values an attribute or a text node holds, read and written as strings.
//!
//! `#[derive(Payload)]` reads every attribute, text node and text-only child through this trait;
//! `#[derive(AttrValue)]` implements it for enums of unit variants (each variant one literal).

use bytestring::ByteString;

use crate::jid::{BareJid, FullJid, Jid};

/// A value read from an attribute or from text, and written back to one.
///
/// ```
/// use lithos_core::payload::AttrValue;
/// use lithos_core::ByteString;
/// assert_eq!(u32::parse_attr(&ByteString::from("42")), Some(42));
/// assert_eq!(u32::parse_attr(&ByteString::from("-1")), None);
/// assert_eq!(bool::parse_attr(&ByteString::from("1")), Some(true));
/// assert_eq!(true.into_attr(), "true");
/// ```
pub trait AttrValue: Sized {
    /// Reads the value; `None` when the text is not one.
    fn parse_attr(s: &ByteString) -> Option<Self>;
    /// Writes the value.
    fn into_attr(self) -> ByteString;
}

impl AttrValue for ByteString {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        Some(s.clone())
    }
    fn into_attr(self) -> ByteString {
        self
    }
}

impl AttrValue for String {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        Some(s.to_string())
    }
    fn into_attr(self) -> ByteString {
        ByteString::from(self)
    }
}

/// XML Schema's `boolean`: `true`, `false`, `1` or `0`; written as `true` or `false`.
impl AttrValue for bool {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        match &**s {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
    fn into_attr(self) -> ByteString {
        ByteString::from_static(if self { "true" } else { "false" })
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        /// Decimal, as Rust's `FromStr` reads it.
        impl AttrValue for $t {
            fn parse_attr(s: &ByteString) -> Option<Self> {
                s.parse().ok()
            }
            fn into_attr(self) -> ByteString {
                ByteString::from(self.to_string())
            }
        }
    )*};
}
numbers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, f32, f64);

impl AttrValue for Jid {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        Jid::parse_shared(s.clone()).ok()
    }
    fn into_attr(self) -> ByteString {
        self.as_shared().clone()
    }
}

impl AttrValue for BareJid {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        BareJid::new(s).ok()
    }
    fn into_attr(self) -> ByteString {
        ByteString::from(self.to_string())
    }
}

impl AttrValue for FullJid {
    fn parse_attr(s: &ByteString) -> Option<Self> {
        FullJid::new(s).ok()
    }
    fn into_attr(self) -> ByteString {
        ByteString::from(self.to_string())
    }
}

/// Lithosphere's reading of a boolean (Java's `Boolean.valueOf`): `true` is true, anything
/// else false; written `true` or `false`. For `#[payload(attr, with = java_boolean)]` on
/// attributes Lithosphere devices write.
pub mod java_boolean {
    /// `true` for `"true"`, `false` for anything else.
    pub fn parse(s: &str) -> Option<bool> {
        Some(s == "true")
    }
    /// `"true"` or `"false"`.
    pub fn format(v: bool) -> String {
        if v { "true" } else { "false" }.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> ByteString {
        ByteString::from(s)
    }

    #[test]
    fn numbers_reject_what_is_not_one() {
        assert_eq!(u8::parse_attr(&b("255")), Some(255));
        assert_eq!(u8::parse_attr(&b("256")), None);
        assert_eq!(i64::parse_attr(&b("-3")), Some(-3));
        assert_eq!(usize::parse_attr(&b(" 1")), None);
        assert_eq!(u16::parse_attr(&b("")), None);
    }

    #[test]
    fn booleans_are_xml_schema_booleans() {
        assert_eq!(bool::parse_attr(&b("0")), Some(false));
        assert_eq!(bool::parse_attr(&b("True")), None);
        assert_eq!(false.into_attr(), "false");
    }

    #[test]
    fn jids_are_checked() {
        assert!(Jid::parse_attr(&b("a@example.com/r")).is_some());
        assert!(Jid::parse_attr(&b("a@@example.com")).is_none());
        assert!(FullJid::parse_attr(&b("a@example.com")).is_none());
        assert_eq!(
            BareJid::parse_attr(&b("a@example.com"))
                .unwrap()
                .into_attr(),
            "a@example.com"
        );
    }
}
