//! Keyword tables ("BXMPP extensions") and the vocabulary they make up.
//!
//! A table maps 1-byte codes to keywords (element names, attribute names, frequent values)
//! within one namespace; the namespace itself has a 2-byte code. The default extension (no
//! namespace code) holds the core and IM keywords and is used for `jabber:client` content.
//!
//! Tables are data, in Lithosphere's `.properties` form:
//!
//! ```text
//! # comment
//! [any section header is ignored]
//! 0xf90x05=urn:xmpp:ping      # a 2-byte code starts a new extension for that namespace
//! 0x00=ping                   # 1-byte codes belong to the extension started last
//! ```
//!
//! Lines with 1-byte codes before any namespace line belong to the default extension. Every
//! extension crate registers its tables as `table:` in its [`extension!`](crate::extension!):
//!
//! ```
//! lithos_core::extension! {
//!     table: "0xf70x7f=urn:example:doc\n0x00=widget\n0x01=size\n",
//! }
//! let vocab = lithos_core::binary::Vocabulary::linked().unwrap();
//! assert!(vocab.extension_for_ns("urn:example:doc").is_some());
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// A table registered at link time by an extension crate (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct TableRegistration {
    /// A name for error messages (usually the crate).
    pub name: &'static str,
    /// The table in `.properties` form.
    pub properties: &'static str,
}

inventory::collect!(TableRegistration);

/// The built-in tables: Lithosphere's core and IM default extension, and the Lithos
/// extensions for negotiation namespaces.
pub const CORE_TABLES: &[TableRegistration] = &[
    TableRegistration {
        name: "core-im",
        properties: include_str!("../../tables/core_im.props"),
    },
    TableRegistration {
        name: "lithos-core",
        properties: include_str!("../../tables/lithos_core.props"),
    },
];

/// The code of the stream element (`stream:stream`), fixed by the format.
pub const STREAM_CODE: u8 = 0xFA;

/// Why a table cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A line that is not `0xNN=keyword` or `0xNN0xNN=namespace`.
    #[error("{table}: line {line}: cannot read {text:?}")]
    BadLine {
        /// Table name.
        table: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A keyword code in the reserved range 0xF0..=0xFF, or a namespace code outside
    /// 0xF0..=0xF9 followed by a byte below 0xFA.
    #[error("{table}: line {line}: code {code} is reserved")]
    ReservedCode {
        /// Table name.
        table: String,
        /// 1-based line number.
        line: usize,
        /// The code as written.
        code: String,
    },
    /// One code given twice in one extension.
    #[error("code 0x{code:02x} is given twice in {namespace}")]
    DuplicateCode {
        /// The extension's namespace (`default` for the default extension).
        namespace: String,
        /// The code.
        code: u8,
    },
    /// One keyword given two codes in one extension.
    #[error("keyword {keyword:?} is given two codes in {namespace}")]
    DuplicateKeyword {
        /// The extension's namespace.
        namespace: String,
        /// The keyword.
        keyword: String,
    },
    /// Two extensions for one namespace.
    #[error("namespace {0} has two extensions")]
    DuplicateNamespace(String),
    /// One 2-byte code for two namespaces.
    #[error("namespace code {code:02x?} is used by both {first} and {second}")]
    DuplicateNamespaceCode {
        /// The code.
        code: [u8; 2],
        /// One namespace.
        first: String,
        /// The other.
        second: String,
    },
}

/// A small, fast hasher for the short keywords of the tables (FxHash's mixing).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Keywords live as long as the program: a vocabulary is built once and shared, and decoded
/// names then cost no reference counting. Each distinct keyword is stored once, however many
/// vocabularies are built.
fn leak(s: &str) -> &'static str {
    static STORE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = STORE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(k) = set.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(k);
    k
}

/// One keyword table: a namespace (none for the default extension), its 2-byte code, and the
/// 1-byte codes of its keywords.
#[derive(Clone)]
pub struct Extension {
    namespace: Option<&'static str>,
    code: Option<[u8; 2]>,
    by_code: Box<[Option<&'static str>; 256]>,
    /// What each code's keyword can name (see [`NameKind`]).
    name_kinds: Box<[NameKind; 256]>,
    by_keyword: KeywordIndex,
}

/// What a keyword can stand for when it is read as an element or attribute name. Tables mix
/// names and values in one code space, so a decoder must not take a value such as
/// `jabber:client` for a name: the element would not be well-formed once written as XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// Not a name (a value, a URI, a prefixed form nobody defines).
    NotAName,
    /// An XML `NCName`: an element or attribute name.
    Plain,
    /// `stream:` + `NCName`: an element in the streams namespace (default extension only).
    Stream,
    /// `xml:` + `NCName`: an attribute in the XML namespace.
    Xml,
}

impl NameKind {
    fn of(keyword: &str) -> NameKind {
        let nc = |s: &str| !s.contains(':') && crate::xml::chars::check_name(s.as_bytes()).is_ok();
        if nc(keyword) {
            NameKind::Plain
        } else if keyword.strip_prefix("stream:").is_some_and(nc) {
            NameKind::Stream
        } else if keyword.strip_prefix("xml:").is_some_and(nc) {
            NameKind::Xml
        } else {
            NameKind::NotAName
        }
    }
}

/// Keyword → code, bucketed by length and first byte. Most strings looked up are not keywords
/// (ids, addresses, text); they miss on the length or on an empty bucket, without hashing.
#[derive(Clone, Default)]
struct KeywordIndex {
    max_len: usize,
    buckets: Vec<Vec<(&'static str, u8)>>,
    len: usize,
}

impl KeywordIndex {
    #[inline]
    fn slot(len: usize, first: u8) -> usize {
        len * 32 + (first & 31) as usize
    }
    #[inline]
    fn get(&self, s: &str) -> Option<u8> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > self.max_len {
            return None;
        }
        self.buckets[Self::slot(b.len(), b[0])]
            .iter()
            .find(|(k, _)| k.as_bytes() == b)
            .map(|&(_, c)| c)
    }
    fn insert(&mut self, k: &'static str, code: u8) {
        if k.len() > self.max_len {
            self.max_len = k.len();
            self.buckets
                .resize_with(Self::slot(self.max_len + 1, 0), Vec::new);
        }
        self.buckets[Self::slot(k.len(), k.as_bytes()[0])].push((k, code));
        self.len += 1;
    }
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension")
            .field("namespace", &self.namespace)
            .field("code", &self.code)
            .field("keywords", &self.by_keyword.len)
            .finish()
    }
}

impl Extension {
    fn new(namespace: Option<&'static str>, code: Option<[u8; 2]>) -> Extension {
        Extension {
            namespace,
            code,
            by_code: Box::new([None; 256]),
            name_kinds: Box::new([NameKind::NotAName; 256]),
            by_keyword: KeywordIndex::default(),
        }
    }
    /// The namespace (`None` for the default extension).
    pub fn namespace(&self) -> Option<&'static str> {
        self.namespace
    }
    /// The 2-byte namespace code (`None` for the default extension).
    pub fn code(&self) -> Option<[u8; 2]> {
        self.code
    }
    /// The keyword of a code.
    #[inline]
    pub fn keyword(&self, code: u8) -> Option<&'static str> {
        self.by_code[code as usize]
    }
    /// What the keyword of `code` can name.
    #[inline]
    pub(crate) fn name_kind(&self, code: u8) -> NameKind {
        self.name_kinds[code as usize]
    }
    /// The code of a keyword.
    #[inline]
    pub fn code_of(&self, keyword: &str) -> Option<u8> {
        self.by_keyword.get(keyword)
    }
    /// Number of keywords.
    pub fn len(&self) -> usize {
        self.by_keyword.len
    }
    /// True when the extension has no keywords.
    pub fn is_empty(&self) -> bool {
        self.by_keyword.len == 0
    }
    /// The error for `keyword` read (or about to be written) where a name belongs.
    pub(crate) fn not_a_name(&self, keyword: &str) -> super::BxmppError {
        super::BxmppError::NotAName {
            keyword: keyword.to_string(),
            namespace: self.label(),
        }
    }
    fn label(&self) -> String {
        self.namespace
            .unwrap_or("the default extension")
            .to_string()
    }
    fn insert(&mut self, code: u8, keyword: &str) -> Result<(), TableError> {
        if self.by_code[code as usize].is_some() {
            return Err(TableError::DuplicateCode {
                namespace: self.label(),
                code,
            });
        }
        if self.by_keyword.get(keyword).is_some() {
            return Err(TableError::DuplicateKeyword {
                namespace: self.label(),
                keyword: keyword.to_string(),
            });
        }
        let k = leak(keyword);
        self.by_code[code as usize] = Some(k);
        self.name_kinds[code as usize] = NameKind::of(k);
        self.by_keyword.insert(k, code);
        Ok(())
    }
}

/// All the keyword tables a codec knows: the default extension and one extension per
/// namespace. Build one with [`Vocabulary::linked`] (built-in plus every table registered
/// through `inventory`), or [`Vocabulary::empty`] plus [`Vocabulary::load`].
#[derive(Debug, Clone)]
pub struct Vocabulary {
    default: Extension,
    extensions: Vec<Extension>,
    by_ns: FastMap<&'static str, usize>,
    by_code: FastMap<[u8; 2], usize>,
}

impl Vocabulary {
    /// A vocabulary with an empty default extension (only `stream:stream`).
    pub fn empty() -> Vocabulary {
        Vocabulary {
            default: Extension::new(None, None),
            extensions: Vec::new(),
            by_ns: FastMap::default(),
            by_code: FastMap::default(),
        }
    }

    /// The built-in tables plus every table linked into the program through `inventory`.
    pub fn linked() -> Result<Vocabulary, TableError> {
        let mut v = Vocabulary::empty();
        for t in CORE_TABLES {
            v.load(t.name, t.properties)?;
        }
        for t in inventory::iter::<TableRegistration> {
            v.load(t.name, t.properties)?;
        }
        Ok(v)
    }

    /// The vocabulary of [`linked`](Self::linked), built once and shared.
    ///
    /// # Panics
    /// If the linked tables conflict (two crates claiming one code): a build error, reported at
    /// the first use.
    pub fn global() -> Arc<Vocabulary> {
        static GLOBAL: OnceLock<Arc<Vocabulary>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| match Vocabulary::linked() {
                Ok(v) => Arc::new(v),
                Err(e) => panic!("the linked BXMPP tables conflict: {e}"),
            })
            .clone()
    }

    /// Adds the tables in `properties` (see the module docs). `name` labels errors. Duplicate
    /// codes, keywords or namespaces are errors, and then nothing is added.
    pub fn load(&mut self, name: &str, properties: &str) -> Result<(), TableError> {
        let mut next = self.clone();
        next.load_into(name, properties)?;
        *self = next;
        Ok(())
    }

    fn load_into(&mut self, name: &str, properties: &str) -> Result<(), TableError> {
        // None: the default extension; Some(i): self.extensions[i].
        let mut current: Option<usize> = None;
        for (n, raw) in properties.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty()
                || line.starts_with('#')
                || line.starts_with('!')
                || line.starts_with('[')
            {
                continue;
            }
            let bad = || TableError::BadLine {
                table: name.to_string(),
                line: n + 1,
                text: raw.to_string(),
            };
            let (key, value) = line.split_once('=').ok_or_else(bad)?;
            let key = key.trim();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.is_empty() {
                return Err(bad());
            }
            let mut code = Vec::new();
            for part in key.split("0x").skip(1) {
                code.push(u8::from_str_radix(part, 16).map_err(|_| bad())?);
            }
            if !key.to_ascii_lowercase().starts_with("0x") {
                return Err(bad());
            }
            let reserved = || TableError::ReservedCode {
                table: name.to_string(),
                line: n + 1,
                code: key.to_string(),
            };
            match code.as_slice() {
                [c] => {
                    if *c >= 0xF0 {
                        return Err(reserved());
                    }
                    match current {
                        None => self.default.insert(*c, value)?,
                        Some(i) => self.extensions[i].insert(*c, value)?,
                    }
                }
                [a, b] => {
                    if !(0xF0..=0xF9).contains(a) || *b >= 0xFA {
                        return Err(reserved());
                    }
                    let code = [*a, *b];
                    if self.by_ns.contains_key(value) {
                        return Err(TableError::DuplicateNamespace(value.to_string()));
                    }
                    if let Some(&other) = self.by_code.get(&code) {
                        return Err(TableError::DuplicateNamespaceCode {
                            code,
                            first: self.extensions[other].label(),
                            second: value.to_string(),
                        });
                    }
                    let ns = leak(value);
                    self.extensions.push(Extension::new(Some(ns), Some(code)));
                    let i = self.extensions.len() - 1;
                    self.by_ns.insert(ns, i);
                    self.by_code.insert(code, i);
                    current = Some(i);
                }
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    /// The default extension.
    pub fn default_extension(&self) -> &Extension {
        &self.default
    }
    /// The extension for a namespace.
    #[inline]
    pub fn extension_for_ns(&self, ns: &str) -> Option<&Extension> {
        self.by_ns.get(ns).map(|&i| &self.extensions[i])
    }
    /// The extension with a 2-byte code.
    #[inline]
    pub fn extension_for_code(&self, code: [u8; 2]) -> Option<&Extension> {
        self.by_code.get(&code).map(|&i| &self.extensions[i])
    }
    /// Every extension other than the default one.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_tables_load() {
        let v = Vocabulary::linked().unwrap();
        let d = v.default_extension();
        assert_eq!(d.code_of("iq"), Some(0x58));
        assert_eq!(d.keyword(0x60), Some("message"));
        assert_eq!(d.code_of("stream:features"), Some(0x3A));
        let tls = v
            .extension_for_ns("urn:ietf:params:xml:ns:xmpp-tls")
            .unwrap();
        assert_eq!(tls.code(), Some([0xF0, 0x00]));
        assert_eq!(tls.code_of("starttls"), Some(0));
        assert_eq!(
            v.extension_for_code([0xF0, 0x01]).unwrap().code_of("="),
            Some(0x1C)
        );
    }

    #[test]
    fn load_errors() {
        let mut v = Vocabulary::empty();
        let err = |v: &mut Vocabulary, t: &str| v.load("t", t).unwrap_err();
        assert!(matches!(
            err(&mut v, "hello"),
            TableError::BadLine { line: 1, .. }
        ));
        assert!(matches!(err(&mut v, "0xzz=a"), TableError::BadLine { .. }));
        assert!(matches!(err(&mut v, "0x01="), TableError::BadLine { .. }));
        assert!(matches!(
            err(&mut v, "0xf0=a"),
            TableError::ReservedCode { .. }
        ));
        assert!(matches!(
            err(&mut v, "0xe00x01=urn:a"),
            TableError::ReservedCode { .. }
        ));
        assert!(matches!(
            err(&mut v, "0xf00xfa=urn:a"),
            TableError::ReservedCode { .. }
        ));
        assert_eq!(
            err(&mut v, "0x01=a\n0x01=b"),
            TableError::DuplicateCode {
                namespace: "the default extension".into(),
                code: 1
            }
        );
        assert_eq!(
            err(&mut v, "0xf90x03=urn:disco\n0x04=name\n0x04=feature"),
            TableError::DuplicateCode {
                namespace: "urn:disco".into(),
                code: 4
            }
        );
        assert_eq!(
            err(&mut v, "0x01=a\n0x02=a"),
            TableError::DuplicateKeyword {
                namespace: "the default extension".into(),
                keyword: "a".into()
            }
        );
        v.load("first", "0xf80x00=urn:a\n0x00=x").unwrap();
        assert_eq!(
            err(&mut v, "0xf80x01=urn:a"),
            TableError::DuplicateNamespace("urn:a".into())
        );
        assert_eq!(
            err(&mut v, "0xf80x00=urn:b"),
            TableError::DuplicateNamespaceCode {
                code: [0xF8, 0],
                first: "urn:a".into(),
                second: "urn:b".into()
            }
        );
        // A failed load adds nothing.
        assert!(v.load("t", "0xf70x01=urn:c\n0x00=y\n0x00=z").is_err());
        assert!(v.extension_for_ns("urn:c").is_none());
    }

    #[test]
    fn sectioned_and_quoted_files() {
        let mut v = Vocabulary::empty();
        v.load(
            "t",
            "# c\n[urn:leps:things:simple-light]\n0xF70x01=\"urn:leps:things:simple-light\"\n0x00=\"flash\"\n 0x01 = repeat \n",
        )
        .unwrap();
        let e = v.extension_for_ns("urn:leps:things:simple-light").unwrap();
        assert_eq!(e.code_of("flash"), Some(0));
        assert_eq!(e.code_of("repeat"), Some(1));
    }
}
