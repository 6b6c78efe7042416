//! Character classes of XML 1.0 (fifth edition) and entity/character reference decoding.

use super::error::XmlError;

/// Bit 0: may start a name. Bit 1: may continue a name. Bit 2: a byte of a non-ASCII character
/// (checked separately). Colons are handled by the qualified-name splitter.
const START: u8 = 1;
const CONT: u8 = 2;
const HIGH: u8 = 4;

static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            t[i] = START | CONT;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            t[i] = CONT;
        } else if c >= 0x80 {
            t[i] = START | CONT | HIGH;
        }
        i += 1;
    }
    t
};

/// True for bytes that may appear in a (qualified) name; non-ASCII bytes are let through here
/// and checked by [`check_name`].
#[inline]
pub(crate) fn is_name_byte(b: u8) -> bool {
    NAME_CLASS[b as usize] & CONT != 0
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Checks that `name` (already UTF-8) is an XML `Name`: a valid first character, valid later
/// characters.
pub(crate) fn check_name(name: &[u8]) -> Result<(), XmlError> {
    let Some(&first) = name.first() else {
        return Err(XmlError::Syntax("empty name"));
    };
    if name.iter().all(|&b| b < 0x80) {
        if NAME_CLASS[first as usize] & START == 0 {
            return Err(XmlError::Syntax(
                "a name starts with a character that cannot start a name",
            ));
        }
        return Ok(());
    }
    let s = std::str::from_utf8(name).map_err(|_| XmlError::InvalidUtf8)?;
    let mut chars = s.chars();
    if !chars.next().is_some_and(is_name_start_char) {
        return Err(XmlError::Syntax(
            "a name starts with a character that cannot start a name",
        ));
    }
    if !chars.all(is_name_char) {
        return Err(XmlError::Syntax(
            "a name contains a character that is not allowed in names",
        ));
    }
    Ok(())
}

/// True for a code point in XML's `Char` production.
#[inline]
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Checks a whole UTF-8 buffer for characters outside XML's `Char` production. Returns whether
/// it contains a carriage return (which then needs end-of-line normalisation).
///
/// Eight bytes at a time: a word with no byte below 0x20 and no 0xEF (the lead byte of U+FFFE
/// and U+FFFF) needs no closer look.
pub(crate) fn check_chars(b: &[u8]) -> Result<bool, XmlError> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut has_cr = false;
    let mut i = 0;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w);
        // A byte below 0x20 (high bit clear) or equal to 0xEF makes the word suspect.
        let below = x.wrapping_sub(LO * 0x20) & !x & HI;
        let ef = x ^ (LO * 0xEF);
        let is_ef = ef.wrapping_sub(LO) & !ef & HI;
        if below | is_ef != 0 {
            has_cr |= check_bytes(b, i, i + 8)?;
        }
        i += 8;
    }
    has_cr |= check_bytes(b, i, b.len())?;
    Ok(has_cr)
}

/// The byte-by-byte check of `b[from..to]` (a character may run past `to`).
fn check_bytes(b: &[u8], from: usize, to: usize) -> Result<bool, XmlError> {
    let mut has_cr = false;
    for i in from..to {
        let c = b[i];
        if c < 0x20 {
            match c {
                b'\t' | b'\n' => {}
                b'\r' => has_cr = true,
                _ => return Err(XmlError::IllegalChar(c as u32)),
            }
        } else if c == 0xEF && i + 2 < b.len() && b[i + 1] == 0xBF && (b[i + 2] & 0xFE) == 0xBE {
            // U+FFFE or U+FFFF
            return Err(XmlError::IllegalChar(0xFFFE | (b[i + 2] as u32 & 1)));
        }
    }
    Ok(has_cr)
}

/// Decodes one reference starting just after `&`. Returns the decoded character(s) appended to
/// `out` and the number of bytes consumed (including the `;`).
fn decode_reference(rest: &[u8], out: &mut String) -> Result<usize, XmlError> {
    let Some(end) = memchr::memchr(b';', rest) else {
        return Err(XmlError::Syntax(
            "'&' not followed by a reference ending in ';'",
        ));
    };
    let body = &rest[..end];
    if let Some(num) = body.strip_prefix(b"#") {
        let bad = || XmlError::BadCharRef(String::from_utf8_lossy(body).into_owned());
        let (digits, radix) = match num.strip_prefix(b"x") {
            Some(h) => (h, 16),
            None => (num, 10),
        };
        if digits.is_empty() || digits.len() > 8 {
            return Err(bad());
        }
        let s = std::str::from_utf8(digits).map_err(|_| bad())?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let v = u32::from_str_radix(s, radix).map_err(|_| bad())?;
        if !is_xml_char(v) {
            return Err(bad());
        }
        out.push(char::from_u32(v).ok_or_else(bad)?);
    } else {
        out.push(match body {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"quot" => '"',
            b"apos" => '\'',
            _ => {
                check_name(body)?;
                return Err(XmlError::UnknownEntity(
                    String::from_utf8_lossy(body).into_owned(),
                ));
            }
        });
    }
    Ok(end + 1)
}

/// Unescapes character data or an attribute value into `out`: references are decoded, line
/// ends normalised (`\r\n` and lone `\r` become `\n`), and in attribute values each white-space
/// character becomes a space (XML 1.0 §3.3.3). `raw` must be valid UTF-8.
pub(crate) fn unescape_into(raw: &[u8], attr: bool, out: &mut String) -> Result<(), XmlError> {
    let mut i = 0;
    let mut run = 0;
    let flush = |out: &mut String, from: usize, to: usize| {
        if from < to {
            // `raw` is UTF-8 and the cut points are ASCII bytes, so each run is UTF-8.
            out.push_str(std::str::from_utf8(&raw[from..to]).unwrap_or_default());
        }
    };
    while i < raw.len() {
        match raw[i] {
            b'&' => {
                flush(out, run, i);
                i += 1 + decode_reference(&raw[i + 1..], out)?;
                run = i;
            }
            b'\r' => {
                flush(out, run, i);
                out.push(if attr { ' ' } else { '\n' });
                i += 1;
                if raw.get(i) == Some(&b'\n') {
                    i += 1;
                }
                run = i;
            }
            b'\t' | b'\n' if attr => {
                flush(out, run, i);
                out.push(' ');
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    flush(out, run, raw.len());
    Ok(())
}

/// Appends `raw` with its line ends normalised (`\r\n` and lone `\r` become `\n`), for CDATA
/// sections, where references are not decoded. `raw` must be valid UTF-8.
pub(crate) fn normalize_eol_into(raw: &[u8], out: &mut String) {
    let s = std::str::from_utf8(raw).unwrap_or_default();
    let mut rest = s;
    while let Some(i) = rest.find('\r') {
        out.push_str(&rest[..i]);
        out.push('\n');
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('\n') {
            rest = r;
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(s: &str, attr: bool) -> Result<String, XmlError> {
        let mut o = String::new();
        unescape_into(s.as_bytes(), attr, &mut o).map(|_| o)
    }

    #[test]
    fn references() {
        assert_eq!(
            un("a&lt;b&gt;c&amp;d&quot;e&apos;f", false).unwrap(),
            "a<b>c&d\"e'f"
        );
        assert_eq!(un("&#65;&#x42;&#x1F600;", false).unwrap(), "AB😀");
        assert_eq!(un("&#0;", false), Err(XmlError::BadCharRef("#0".into())));
        assert_eq!(
            un("&#xD800;", false),
            Err(XmlError::BadCharRef("#xD800".into()))
        );
        assert_eq!(un("&#x;", false), Err(XmlError::BadCharRef("#x".into())));
        assert_eq!(
            un("&#12a;", false),
            Err(XmlError::BadCharRef("#12a".into()))
        );
        assert_eq!(
            un("&nbsp;", false),
            Err(XmlError::UnknownEntity("nbsp".into()))
        );
        assert!(matches!(un("a & b", false), Err(XmlError::Syntax(_))));
        assert!(matches!(un("&amp", false), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn line_ends_and_attribute_normalisation() {
        assert_eq!(un("a\r\nb\rc\nd", false).unwrap(), "a\nb\nc\nd");
        assert_eq!(un("a\r\nb\tc\nd&#10;e", true).unwrap(), "a b c d\ne");
    }

    #[test]
    fn cdata_line_ends() {
        let mut o = String::new();
        normalize_eol_into(b"a\r\nb\rc&amp;", &mut o);
        assert_eq!(o, "a\nb\nc&amp;");
    }

    #[test]
    fn names() {
        assert!(check_name(b"message").is_ok());
        assert!(check_name(b"x-y.z_1").is_ok());
        assert!(check_name("été".as_bytes()).is_ok());
        assert!(check_name(b"1abc").is_err());
        assert!(check_name(b"-abc").is_err());
        assert!(check_name("a\u{2028}".as_bytes()).is_err());
    }

    #[test]
    fn illegal_characters() {
        assert_eq!(check_chars(b"ok\t\n"), Ok(false));
        assert_eq!(check_chars(b"cr\r"), Ok(true));
        assert_eq!(check_chars(b"a\x00"), Err(XmlError::IllegalChar(0)));
        assert_eq!(check_chars(b"a\x1b"), Err(XmlError::IllegalChar(0x1b)));
        assert_eq!(
            check_chars("\u{FFFE}".as_bytes()),
            Err(XmlError::IllegalChar(0xFFFE))
        );
        assert_eq!(
            check_chars("\u{FFFF}".as_bytes()),
            Err(XmlError::IllegalChar(0xFFFF))
        );
        assert_eq!(check_chars("\u{FFFD}".as_bytes()), Ok(false));
        // Every position within and across the eight-byte words.
        for at in 0..20 {
            let mut v = vec![b'a'; 20];
            v[at] = 0x01;
            assert_eq!(check_chars(&v), Err(XmlError::IllegalChar(1)), "at {at}");
            let mut v = "a".repeat(20).into_bytes();
            v.splice(at..at, "\u{FFFF}".bytes());
            assert_eq!(
                check_chars(&v),
                Err(XmlError::IllegalChar(0xFFFF)),
                "at {at}"
            );
            let mut v = "a".repeat(20).into_bytes();
            v.splice(at..at, "\u{E9}\u{FFFD}\r".bytes());
            assert_eq!(check_chars(&v), Ok(true), "at {at}");
        }
    }
}
