//! XMPP addresses (RFC 7622).
//!
//! A [`Jid`] is `[localpart@]domainpart[/resourcepart]`. Parsing prepares each part the way
//! RFC 7622 asks (PRECIS `UsernameCaseMapped` for the localpart, `OpaqueString` for the
//! resourcepart, IDNA for the domainpart), so two spellings of one address compare equal:
//!
//! ```
//! use lithos_core::Jid;
//! let a: Jid = "Juliet@Capulet.Example/Balcony".parse().unwrap();
//! let b: Jid = "juliet@capulet.example/Balcony".parse().unwrap();
//! assert_eq!(a, b);
//! assert_eq!(a.local(), Some("juliet"));
//! assert_eq!(a.resource(), Some("Balcony")); // resources keep their case
//! assert_eq!(a.to_bare().as_str(), "juliet@capulet.example");
//! ```
//!
//! A `Jid` holds its normalised text in one shared buffer, so cloning it, or taking its bare
//! form, copies no bytes.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bytestring::ByteString;
use precis_core::profile::PrecisFastInvocation;
use precis_profiles::{OpaqueString, UsernameCaseMapped};

/// The longest a prepared part may be, in bytes (RFC 7622 §3.2–3.4).
pub const MAX_PART_LEN: usize = 1023;

/// Which part of an address an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JidPart {
    /// The part before `@`.
    Local,
    /// The mandatory host part.
    Domain,
    /// The part after `/`.
    Resource,
}

impl fmt::Display for JidPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JidPart::Local => "localpart",
            JidPart::Domain => "domainpart",
            JidPart::Resource => "resourcepart",
        })
    }
}

/// Why a string is not a valid XMPP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// A part is present (its separator is there) but empty, or the domain is missing.
    #[error("the {0} is empty")]
    Empty(JidPart),
    /// A part is longer than 1023 bytes after preparation.
    #[error("the {0} is longer than {MAX_PART_LEN} bytes")]
    TooLong(JidPart),
    /// The localpart holds one of the characters RFC 7622 §3.3.1 forbids (`"&'/:<>@`).
    #[error("the localpart contains the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// A part failed its PRECIS or IDNA profile.
    #[error("the {0} is not valid: {1}")]
    Invalid(JidPart, &'static str),
}

/// An XMPP address, bare (`user@host`) or full (`user@host/resource`), in normalised form.
///
/// Equality, ordering and hashing use the normalised text. Cloning is cheap (a reference count).
#[derive(Clone)]
pub struct Jid {
    text: ByteString,
    /// Byte index of the `@`, if there is a localpart.
    at: Option<u16>,
    /// Byte index of the `/`, if there is a resourcepart.
    slash: Option<u16>,
}

impl Jid {
    /// Parses and normalises an address.
    ///
    /// ```
    /// # use lithos_core::{Jid, jid::{JidError, JidPart}};
    /// assert!(Jid::new("room@muc.example/nick name").is_ok());
    /// assert_eq!(Jid::new("a b@example").unwrap_err(), JidError::Invalid(JidPart::Local, "disallowed character"));
    /// assert_eq!(Jid::new("@example").unwrap_err(), JidError::Empty(JidPart::Local));
    /// ```
    pub fn new(s: &str) -> Result<Jid, JidError> {
        Self::parse_shared(ByteString::from(s))
    }

    /// Parses an address held in a shared string; when the text is already in normal form
    /// (the common case) the result shares the buffer instead of copying it.
    pub fn parse_shared(s: ByteString) -> Result<Jid, JidError> {
        let (local, domain, resource) = split(&s)?;
        let local_n = local.map(prep_local).transpose()?;
        let domain_n = prep_domain(domain)?;
        let resource_n = resource.map(prep_resource).transpose()?;
        let unchanged = matches!(local_n, None | Some(Cow::Borrowed(_)))
            && matches!(domain_n, Cow::Borrowed(d) if d.len() == domain.len())
            && matches!(resource_n, None | Some(Cow::Borrowed(_)));
        if unchanged {
            let at = local.map(|l| l.len() as u16);
            let slash = resource.map(|r| (s.len() - r.len() - 1) as u16);
            return Ok(Jid { text: s, at, slash });
        }
        Ok(Self::assemble(
            local_n.as_deref(),
            &domain_n,
            resource_n.as_deref(),
        ))
    }

    /// Builds an address from parts, preparing each one.
    ///
    /// ```
    /// # use lithos_core::Jid;
    /// let j = Jid::from_parts(Some("Romeo"), "Montague.Example", Some("orchard")).unwrap();
    /// assert_eq!(j.as_str(), "romeo@montague.example/orchard");
    /// ```
    pub fn from_parts(
        local: Option<&str>,
        domain: &str,
        resource: Option<&str>,
    ) -> Result<Jid, JidError> {
        let local = local.map(prep_local).transpose()?;
        let domain = prep_domain(domain)?;
        let resource = resource.map(prep_resource).transpose()?;
        Ok(Self::assemble(
            local.as_deref(),
            &domain,
            resource.as_deref(),
        ))
    }

    /// Joins already-prepared parts.
    fn assemble(local: Option<&str>, domain: &str, resource: Option<&str>) -> Jid {
        let mut out = String::with_capacity(
            local.map_or(0, |l| l.len() + 1) + domain.len() + resource.map_or(0, |r| r.len() + 1),
        );
        let mut at = None;
        if let Some(l) = local {
            out.push_str(l);
            at = Some(out.len() as u16);
            out.push('@');
        }
        out.push_str(domain);
        let mut slash = None;
        if let Some(r) = resource {
            slash = Some(out.len() as u16);
            out.push('/');
            out.push_str(r);
        }
        Jid {
            text: ByteString::from(out),
            at,
            slash,
        }
    }

    /// The whole address in normal form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address as a shared string (no copy).
    pub fn as_shared(&self) -> &ByteString {
        &self.text
    }

    /// The localpart, if any.
    pub fn local(&self) -> Option<&str> {
        self.at.map(|at| &self.text[..at as usize])
    }

    /// The domainpart.
    pub fn domain(&self) -> &str {
        let start = self.at.map_or(0, |at| at as usize + 1);
        let end = self.slash.map_or(self.text.len(), |s| s as usize);
        &self.text[start..end]
    }

    /// The resourcepart, if any.
    pub fn resource(&self) -> Option<&str> {
        self.slash.map(|s| &self.text[s as usize + 1..])
    }

    /// True when the address has no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.slash.is_none()
    }

    /// True when the address has a resourcepart.
    pub fn is_full(&self) -> bool {
        self.slash.is_some()
    }

    /// True when the address is just a domain (a server or component address).
    pub fn is_domain(&self) -> bool {
        self.at.is_none() && self.slash.is_none()
    }

    /// The address without its resourcepart (shares the buffer).
    pub fn to_bare(&self) -> Jid {
        match self.slash {
            None => self.clone(),
            Some(s) => Jid {
                text: self.text.slice_ref(&self.text[..s as usize]),
                at: self.at,
                slash: None,
            },
        }
    }

    /// The domain alone, as an address.
    pub fn to_domain(&self) -> Jid {
        let d = self.domain();
        Jid {
            text: self.text.slice_ref(d),
            at: None,
            slash: None,
        }
    }

    /// This address's bare form with the given resource.
    pub fn with_resource(&self, resource: &str) -> Result<Jid, JidError> {
        let r = prep_resource(resource)?;
        Ok(Self::assemble(self.local(), self.domain(), Some(&r)))
    }

    /// True when both addresses have the same bare form.
    pub fn bare_eq(&self, other: &Jid) -> bool {
        self.bare_str() == other.bare_str()
    }

    /// The bare form as text, without allocating.
    pub fn bare_str(&self) -> &str {
        &self.text[..self.slash.map_or(self.text.len(), |s| s as usize)]
    }
}

impl PartialEq for Jid {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Jid {}
impl Hash for Jid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}
impl PartialOrd for Jid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Jid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({:?})", self.as_str())
    }
}
impl FromStr for Jid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Jid, JidError> {
        Jid::new(s)
    }
}
impl TryFrom<&str> for Jid {
    type Error = JidError;
    fn try_from(s: &str) -> Result<Jid, JidError> {
        Jid::new(s)
    }
}
impl TryFrom<ByteString> for Jid {
    type Error = JidError;
    fn try_from(s: ByteString) -> Result<Jid, JidError> {
        Jid::parse_shared(s)
    }
}
impl From<Jid> for ByteString {
    fn from(j: Jid) -> ByteString {
        j.text
    }
}
impl AsRef<str> for Jid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// An address guaranteed to have no resourcepart.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid(Jid);

impl BareJid {
    /// Parses an address that must be bare.
    pub fn new(s: &str) -> Result<BareJid, JidError> {
        Ok(Jid::new(s)?.into())
    }
    /// The underlying address.
    pub fn as_jid(&self) -> &Jid {
        &self.0
    }
    /// The bare address with a resource: a full address.
    pub fn with_resource(&self, resource: &str) -> Result<FullJid, JidError> {
        Ok(FullJid(self.0.with_resource(resource)?))
    }
}

impl From<Jid> for BareJid {
    /// Drops the resource, if any.
    fn from(j: Jid) -> BareJid {
        BareJid(j.to_bare())
    }
}
impl From<BareJid> for Jid {
    fn from(b: BareJid) -> Jid {
        b.0
    }
}
impl std::ops::Deref for BareJid {
    type Target = Jid;
    fn deref(&self) -> &Jid {
        &self.0
    }
}
impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Debug for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BareJid({:?})", self.0.as_str())
    }
}

/// An address guaranteed to have a resourcepart.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullJid(Jid);

impl FullJid {
    /// Parses an address that must be full.
    pub fn new(s: &str) -> Result<FullJid, JidError> {
        FullJid::try_from(Jid::new(s)?)
    }
    /// The underlying address.
    pub fn as_jid(&self) -> &Jid {
        &self.0
    }
    /// The resourcepart.
    pub fn resource(&self) -> &str {
        self.0.resource().unwrap_or_default()
    }
    /// The bare form.
    pub fn to_bare(&self) -> BareJid {
        BareJid(self.0.to_bare())
    }
}

impl TryFrom<Jid> for FullJid {
    type Error = JidError;
    /// Fails with `Empty(Resource)` when the address is bare.
    fn try_from(j: Jid) -> Result<FullJid, JidError> {
        if j.is_full() {
            Ok(FullJid(j))
        } else {
            Err(JidError::Empty(JidPart::Resource))
        }
    }
}
impl From<FullJid> for Jid {
    fn from(f: FullJid) -> Jid {
        f.0
    }
}
impl std::ops::Deref for FullJid {
    type Target = Jid;
    fn deref(&self) -> &Jid {
        &self.0
    }
}
impl fmt::Display for FullJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Debug for FullJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FullJid({:?})", self.0.as_str())
    }
}

/// Splits per RFC 7622 §3.1: the resource starts at the first `/`; the localpart ends at the
/// first `@` before it.
fn split(s: &str) -> Result<(Option<&str>, &str, Option<&str>), JidError> {
    // Byte searches: '/' and '@' are ASCII, so their offsets are character boundaries.
    let (rest, resource) = match memchr::memchr(b'/', s.as_bytes()) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (local, domain) = match memchr::memchr(b'@', rest.as_bytes()) {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    if local == Some("") {
        return Err(JidError::Empty(JidPart::Local));
    }
    if resource == Some("") {
        return Err(JidError::Empty(JidPart::Resource));
    }
    if domain.is_empty() {
        return Err(JidError::Empty(JidPart::Domain));
    }
    Ok((local, domain, resource))
}

fn check_len(part: JidPart, s: &str) -> Result<(), JidError> {
    if s.is_empty() {
        Err(JidError::Empty(part))
    } else if s.len() > MAX_PART_LEN {
        Err(JidError::TooLong(part))
    } else {
        Ok(())
    }
}

fn precis_reason(e: precis_core::Error) -> &'static str {
    match e {
        precis_core::Error::Invalid => "empty or invalid after preparation",
        precis_core::Error::BadCodepoint(_) => "disallowed character",
        _ => "rejected by its PRECIS profile",
    }
}

/// Applies a PRECIS profile and checks that applying it again changes nothing (RFC 8264 §7:
/// a string whose preparation is not stable is rejected). Example: U+0387 normalises to U+00B7,
/// which the profile then refuses outside its context.
fn stable<'a>(
    part: JidPart,
    s: &'a str,
    enforce: impl Fn(&str) -> Result<Cow<'_, str>, precis_core::Error>,
) -> Result<Cow<'a, str>, JidError> {
    let once = enforce(s).map_err(|e| JidError::Invalid(part, precis_reason(e)))?;
    match enforce(&once) {
        Ok(twice) if twice == once => Ok(Cow::Owned(once.into_owned())),
        _ => Err(JidError::Invalid(part, "not stable under preparation")),
    }
}

const LOCAL_FORBIDDEN: &[char] = &['"', '&', '\'', '/', ':', '<', '>', '@'];

/// [`PREPARED`] bit: the byte may stand in a prepared localpart as it is (printable ASCII,
/// not upper case, not one of [`LOCAL_FORBIDDEN`]).
const LOCAL_OK: u8 = 1;
/// [`PREPARED`] bit: the byte may stand in a label of a prepared ASCII domainpart
/// (lower-case letter, digit, `-`, `_`).
const LABEL_OK: u8 = 2;

/// Per byte: what it may stand for in an address already in prepared form, so the usual
/// address skips preparation in one pass.
static PREPARED: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        let c = b as u8;
        let forbidden = matches!(c, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@');
        if !forbidden && !c.is_ascii_uppercase() {
            t[b] |= LOCAL_OK;
        }
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' {
            t[b] |= LABEL_OK;
        }
        b += 1;
    }
    t
};

/// True when `d` is an ASCII domain name that preparation leaves as it is: labels of 1 to 63
/// lower-case letters, digits, `-` and `_`. (A dotted IPv4 address is one too, and is
/// likewise kept as it is.)
fn is_prepared_ascii_domain(d: &[u8]) -> bool {
    let mut label = 0;
    for &b in d {
        if b == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else if PREPARED[b as usize] & LABEL_OK != 0 && label < 63 {
            label += 1;
        } else {
            return false;
        }
    }
    label > 0
}

/// Prepares a localpart: PRECIS UsernameCaseMapped plus the RFC 7622 exclusions. This is also
/// how a SASL user name is turned into an account name.
pub fn prep_local(s: &str) -> Result<Cow<'_, str>, JidError> {
    check_len(JidPart::Local, s)?;
    // Already in prepared form (the usual case: addresses written by software): one pass.
    if s.bytes().all(|b| PREPARED[b as usize] & LOCAL_OK != 0) {
        return Ok(Cow::Borrowed(s));
    }
    prep_local_full(s)
}

/// [`prep_local`] without its shortcut for prepared addresses.
fn prep_local_full(s: &str) -> Result<Cow<'_, str>, JidError> {
    let out: Cow<'_, str> = if s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        // ASCII fast path: IdentifierClass allows every printable ASCII character; case
        // mapping is plain lower-casing.
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        stable(JidPart::Local, s, |x| UsernameCaseMapped::enforce(x))?
    };
    if let Some(c) = out.chars().find(|c| LOCAL_FORBIDDEN.contains(c)) {
        return Err(JidError::ForbiddenChar(c));
    }
    check_len(JidPart::Local, &out)?;
    Ok(out)
}

/// Prepares a resourcepart: PRECIS OpaqueString.
pub fn prep_resource(s: &str) -> Result<Cow<'_, str>, JidError> {
    check_len(JidPart::Resource, s)?;
    let out: Cow<'_, str> = if s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Cow::Borrowed(s)
    } else {
        stable(JidPart::Resource, s, |x| OpaqueString::enforce(x))?
    };
    check_len(JidPart::Resource, &out)?;
    Ok(out)
}

/// Prepares a domainpart: IP literals as they are, ASCII names lower-cased and checked label by
/// label, internationalised names through UTS #46 to their Unicode form. One trailing dot is
/// dropped (RFC 7622 §3.2).
pub fn prep_domain(s: &str) -> Result<Cow<'_, str>, JidError> {
    let s = s.strip_suffix('.').unwrap_or(s);
    check_len(JidPart::Domain, s)?;
    if is_prepared_ascii_domain(s.as_bytes()) {
        return Ok(Cow::Borrowed(s));
    }
    prep_domain_full(s)
}

/// [`prep_domain`] without its shortcut for prepared names (`s` without its trailing dot,
/// and of an allowed length).
fn prep_domain_full(s: &str) -> Result<Cow<'_, str>, JidError> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(Cow::Borrowed(s)),
            Err(_) => Err(JidError::Invalid(JidPart::Domain, "bad IPv6 literal")),
        };
    }
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) && s.parse::<Ipv4Addr>().is_ok() {
        return Ok(Cow::Borrowed(s));
    }
    let out: Cow<'_, str> = if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        let (mapped, result) = idna::domain_to_unicode(s);
        if result.is_err() {
            return Err(JidError::Invalid(JidPart::Domain, "not a valid IDN"));
        }
        match idna::domain_to_unicode(&mapped) {
            (again, Ok(())) if again == mapped => {}
            _ => {
                return Err(JidError::Invalid(
                    JidPart::Domain,
                    "not stable under preparation",
                ));
            }
        }
        Cow::Owned(mapped)
    };
    for label in out.split('.') {
        if label.is_empty() {
            return Err(JidError::Invalid(JidPart::Domain, "empty label"));
        }
        if label.len() > 63 {
            return Err(JidError::Invalid(
                JidPart::Domain,
                "label longer than 63 bytes",
            ));
        }
        let ok = label.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || c == '-' || c == '_'
            } else {
                !c.is_whitespace() && !c.is_control()
            }
        });
        if !ok {
            return Err(JidError::Invalid(JidPart::Domain, "disallowed character"));
        }
    }
    check_len(JidPart::Domain, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_forms() {
        let j = Jid::new("juliet@example.com/foo").unwrap();
        assert_eq!(j.local(), Some("juliet"));
        assert_eq!(j.domain(), "example.com");
        assert_eq!(j.resource(), Some("foo"));
        assert!(j.is_full());
        let b = j.to_bare();
        assert_eq!(b.as_str(), "juliet@example.com");
        assert!(b.is_bare());
        assert_eq!(b.resource(), None);
        let d = Jid::new("example.com").unwrap();
        assert!(d.is_domain());
        assert_eq!(d.local(), None);
        assert_eq!(j.to_domain(), d);
    }

    #[test]
    fn split_rules_of_rfc7622() {
        // The resource begins at the first slash, and may contain @ and /.
        let j = Jid::new("a@b/c@d/e").unwrap();
        assert_eq!(j.local(), Some("a"));
        assert_eq!(j.domain(), "b");
        assert_eq!(j.resource(), Some("c@d/e"));
        let j = Jid::new("b/c@d").unwrap();
        assert_eq!(j.local(), None);
        assert_eq!(j.domain(), "b");
        assert_eq!(j.resource(), Some("c@d"));
    }

    #[test]
    fn normalisation_makes_equal_addresses_equal() {
        assert_eq!(
            Jid::new("JULIET@EXAMPLE.COM/Res").unwrap(),
            Jid::new("juliet@example.com/Res").unwrap()
        );
        assert_ne!(
            Jid::new("juliet@example.com/Res").unwrap(),
            Jid::new("juliet@example.com/res").unwrap()
        );
        // Non-ASCII case folding through PRECIS.
        assert_eq!(Jid::new("ÇA@example.com").unwrap().local(), Some("ça"));
        // Full-width characters in the localpart are mapped to their narrow forms.
        assert_eq!(
            Jid::new("ｊｕｌｉｅｔ@example.com").unwrap().local(),
            Some("juliet")
        );
        // IDN domains: upper case and the trailing dot go away.
        assert_eq!(
            Jid::new("a@BÜCHER.example.").unwrap().domain(),
            "bücher.example"
        );
        assert_eq!(Jid::new("a@example.com.").unwrap().domain(), "example.com");
    }

    #[test]
    fn unchanged_input_shares_its_buffer() {
        let s = ByteString::from("juliet@example.com/balcony");
        let j = Jid::parse_shared(s.clone()).unwrap();
        assert_eq!(j.as_shared().as_ptr(), s.as_ptr());
        let b = j.to_bare();
        assert_eq!(b.as_shared().as_ptr(), s.as_ptr());
    }

    #[test]
    fn rejections() {
        use JidError::*;
        use JidPart::*;
        let cases: &[(&str, JidError)] = &[
            ("", Empty(Domain)),
            ("@example.com", Empty(Local)),
            ("a@", Empty(Domain)),
            ("a@example.com/", Empty(Resource)),
            ("/res", Empty(Domain)),
            ("a\"b@example.com", ForbiddenChar('"')),
            ("a&b@example.com", ForbiddenChar('&')),
            ("a'b@example.com", ForbiddenChar('\'')),
            ("a:b@example.com", ForbiddenChar(':')),
            ("a<b@example.com", ForbiddenChar('<')),
            ("a>b@example.com", ForbiddenChar('>')),
            ("a b@example.com", Invalid(Local, "disallowed character")),
            (
                "a\u{7}b@example.com",
                Invalid(Local, "disallowed character"),
            ),
            ("a@exa mple.com", Invalid(Domain, "disallowed character")),
            ("a@example..com", Invalid(Domain, "empty label")),
            ("a@[::1", Invalid(Domain, "disallowed character")),
            ("a@[zz::1]", Invalid(Domain, "bad IPv6 literal")),
            (
                "a@example.com/\u{7}",
                Invalid(Resource, "disallowed character"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Jid::new(input).unwrap_err(), *want, "input {input:?}");
        }
    }

    #[test]
    fn preparation_must_be_stable() {
        // Found by fuzzing: U+0387 becomes U+00B7 under NFC, which OpaqueString then rejects.
        assert_eq!(
            Jid::new("e/\u{387}g").unwrap_err(),
            JidError::Invalid(JidPart::Resource, "not stable under preparation")
        );
        // The localpart profile refuses the character outright.
        assert_eq!(
            Jid::new("\u{387}g@example.com").unwrap_err(),
            JidError::Invalid(JidPart::Local, "disallowed character")
        );
    }

    #[test]
    fn length_limits() {
        let long = "a".repeat(1024);
        let ok = "a".repeat(1023);
        assert_eq!(
            Jid::new(&format!("{long}@example.com")).unwrap_err(),
            JidError::TooLong(JidPart::Local)
        );
        assert!(Jid::new(&format!("{ok}@example.com")).is_ok());
        assert_eq!(
            Jid::new(&format!("a@example.com/{long}")).unwrap_err(),
            JidError::TooLong(JidPart::Resource)
        );
        assert!(Jid::new(&format!("a@example.com/{ok}")).is_ok());
        let labels = vec!["a".repeat(60); 17].join(".");
        assert_eq!(
            Jid::new(&labels).unwrap_err(),
            JidError::TooLong(JidPart::Domain)
        );
    }

    #[test]
    fn ip_literals() {
        assert_eq!(Jid::new("a@[::1]").unwrap().domain(), "[::1]");
        assert_eq!(Jid::new("a@127.0.0.1/x").unwrap().domain(), "127.0.0.1");
    }

    #[test]
    fn bare_and_full_types() {
        let f = FullJid::new("a@b/c").unwrap();
        assert_eq!(f.resource(), "c");
        assert_eq!(f.to_bare().as_str(), "a@b");
        assert_eq!(
            FullJid::new("a@b").unwrap_err(),
            JidError::Empty(JidPart::Resource)
        );
        let b = BareJid::new("A@B/c").unwrap();
        assert_eq!(b.as_str(), "a@b");
        assert_eq!(b.with_resource("x").unwrap().as_str(), "a@b/x");
    }

    #[test]
    fn display_round_trip() {
        for s in ["a@b", "a@b/c", "b", "b/c d", "élan@ex.org/Ünïcode"] {
            let j = Jid::new(s).unwrap();
            let shown = format!("{j}");
            assert_eq!(Jid::new(&shown).unwrap(), j);
        }
    }

    proptest::proptest! {
        /// The shortcuts for prepared parts give what full preparation gives.
        #[test]
        fn shortcuts_agree_with_full_preparation(s in "[ -~]{1,20}|[a-z0-9._-]{1,70}|[A-Za-z0-9.@/:-]{1,12}") {
            proptest::prop_assert_eq!(prep_local(&s), prep_local_full(&s));
            let d = s.strip_suffix('.').unwrap_or(&s);
            if check_len(JidPart::Domain, d).is_ok() {
                proptest::prop_assert_eq!(prep_domain(&s), prep_domain_full(d));
            }
        }
    }
}
