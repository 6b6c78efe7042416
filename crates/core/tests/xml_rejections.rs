//! Every class of input RFC 6120 §11 (and XML 1.0) makes us refuse, each asserting the exact
//! error and the stream error condition a server sends for it.

use bytes::BytesMut;
use lithos_core::xml::XmlDecoder;
use lithos_core::{Limits, StreamErrorCondition as C, StreamEvent, XmlError};

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// Feeds `input` to a decoder with `limits`, all at once and then one byte at a time, and
/// returns the first error, which must be the same both ways. Panics if there is none.
fn error_of(input: &[u8], limits: Limits) -> XmlError {
    let whole = first_error(&[input], limits.clone());
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let split = first_error(&bytes, limits);
    assert_eq!(
        whole,
        split,
        "whole vs byte by byte: {:?}",
        String::from_utf8_lossy(input)
    );
    whole.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(input)))
}

fn first_error(chunks: &[&[u8]], limits: Limits) -> Option<XmlError> {
    let mut d = XmlDecoder::with_limits(limits);
    let mut buf = BytesMut::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => return Some(e),
            }
        }
    }
    None
}

fn in_stream(body: &str) -> Vec<u8> {
    format!("{HEADER}{body}").into_bytes()
}

#[test]
fn rejections_inside_a_stream() {
    use XmlError::*;
    let cases: Vec<(&str, Vec<u8>, XmlError, C)> = vec![
        // Restricted XML (RFC 6120 §11.1).
        (
            "comment in a stanza",
            in_stream("<message><!-- hi --></message>"),
            Comment,
            C::RestrictedXml,
        ),
        (
            "comment between stanzas",
            in_stream("<!-- hi -->"),
            Comment,
            C::RestrictedXml,
        ),
        (
            "comment before the header",
            b"<!-- hi -->".to_vec(),
            Comment,
            C::RestrictedXml,
        ),
        (
            "PI in a stanza",
            in_stream("<message><?php echo 1 ?></message>"),
            ProcessingInstruction,
            C::RestrictedXml,
        ),
        (
            "PI between stanzas",
            in_stream("<?foo bar?>"),
            ProcessingInstruction,
            C::RestrictedXml,
        ),
        (
            "PI before the header",
            b"<?foo bar?>".to_vec(),
            ProcessingInstruction,
            C::RestrictedXml,
        ),
        (
            "DOCTYPE before the header",
            b"<!DOCTYPE stream [<!ENTITY x 'y'>]>".to_vec(),
            Doctype,
            C::RestrictedXml,
        ),
        (
            "ENTITY declaration in a stanza",
            in_stream("<message><!ENTITY x 'y'></message>"),
            Doctype,
            C::RestrictedXml,
        ),
        (
            "DOCTYPE between stanzas",
            in_stream("<!DOCTYPE x>"),
            Doctype,
            C::RestrictedXml,
        ),
        (
            "undeclared entity in text",
            in_stream("<message><body>&nbsp;</body></message>"),
            UnknownEntity("nbsp".into()),
            C::RestrictedXml,
        ),
        (
            "undeclared entity in an attribute",
            in_stream("<message id='&copy;'/>"),
            UnknownEntity("copy".into()),
            C::RestrictedXml,
        ),
        // Namespaces.
        (
            "undeclared element prefix",
            in_stream("<foo:message/>"),
            UndeclaredPrefix("foo".into()),
            C::BadNamespacePrefix,
        ),
        (
            "undeclared attribute prefix",
            in_stream("<message foo:id='1'/>"),
            UndeclaredPrefix("foo".into()),
            C::BadNamespacePrefix,
        ),
        (
            "prefix out of scope",
            in_stream("<message><a xmlns:p='urn:p'/><p:b/></message>"),
            UndeclaredPrefix("p".into()),
            C::BadNamespacePrefix,
        ),
        (
            "xml prefix rebound",
            in_stream("<message xmlns:xml='urn:other'/>"),
            BadPrefix("the xml prefix and its namespace go only together".into()),
            C::BadNamespacePrefix,
        ),
        (
            "xml namespace bound elsewhere",
            in_stream("<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>"),
            BadPrefix("the xml prefix and its namespace go only together".into()),
            C::BadNamespacePrefix,
        ),
        (
            "xmlns prefix declared",
            in_stream("<message xmlns:xmlns='urn:x'/>"),
            BadPrefix("the prefix xmlns cannot be declared".into()),
            C::BadNamespacePrefix,
        ),
        (
            "prefix bound to nothing",
            in_stream("<message xmlns:p=''/>"),
            BadPrefix("prefix p bound to the empty namespace".into()),
            C::BadNamespacePrefix,
        ),
        (
            "element with the xmlns prefix",
            in_stream("<xmlns:message/>"),
            BadPrefix("an element cannot use the xmlns prefix".into()),
            C::BadNamespacePrefix,
        ),
        // Attributes.
        (
            "duplicate attribute",
            in_stream("<message id='1' id='2'/>"),
            DuplicateAttribute("id".into()),
            C::NotWellFormed,
        ),
        (
            "duplicate after namespace resolution",
            in_stream("<message xmlns:a='urn:u' xmlns:b='urn:u' a:k='1' b:k='2'/>"),
            DuplicateAttribute("{urn:u}k".into()),
            C::NotWellFormed,
        ),
        (
            "duplicate namespace declaration",
            in_stream("<message xmlns:a='urn:u' xmlns:a='urn:v'/>"),
            DuplicateAttribute("xmlns:a".into()),
            C::NotWellFormed,
        ),
        (
            "unquoted attribute",
            in_stream("<message id=1/>"),
            Syntax("expected a quoted attribute value"),
            C::NotWellFormed,
        ),
        (
            "attribute without value",
            in_stream("<message id/>"),
            Syntax("expected '=' after an attribute name"),
            C::NotWellFormed,
        ),
        (
            "attributes not separated",
            in_stream("<message id='1'to='a'/>"),
            Syntax("expected white space, '>' or '/>' in a start tag"),
            C::NotWellFormed,
        ),
        (
            "'<' in an attribute value",
            in_stream("<message id='a<b'/>"),
            Syntax("'<' in an attribute value"),
            C::NotWellFormed,
        ),
        // Structure.
        (
            "mismatched end tag",
            in_stream("<message><body></bodi></message>"),
            MismatchedEndTag {
                expected: "body".into(),
                found: "bodi".into(),
            },
            C::NotWellFormed,
        ),
        (
            "mismatched prefix in end tag",
            in_stream("<stream:features></features>"),
            MismatchedEndTag {
                expected: "stream:features".into(),
                found: "features".into(),
            },
            C::NotWellFormed,
        ),
        (
            "wrong stream close",
            in_stream("</stream>"),
            MismatchedEndTag {
                expected: "stream:stream".into(),
                found: "stream".into(),
            },
            C::NotWellFormed,
        ),
        (
            "name starting with a digit",
            in_stream("<1message/>"),
            Syntax("a name starts with a character that cannot start a name"),
            C::NotWellFormed,
        ),
        (
            "malformed qualified name",
            in_stream("<a:b:c/>"),
            Syntax("malformed qualified name"),
            C::NotWellFormed,
        ),
        (
            "']]>' in text",
            in_stream("<message><body>a]]>b</body></message>"),
            Syntax("']]>' is not allowed in text"),
            C::NotWellFormed,
        ),
        (
            "bare ampersand",
            in_stream("<message><body>a & b</body></message>"),
            Syntax("'&' not followed by a reference ending in ';'"),
            C::NotWellFormed,
        ),
        (
            "slash not closing a tag",
            in_stream("<message/ >"),
            Syntax("expected '>' after '/'"),
            C::NotWellFormed,
        ),
        (
            "data after the stream closed",
            in_stream("</stream:stream><message/>"),
            Syntax("data after the end of the stream"),
            C::NotWellFormed,
        ),
        (
            "text before the header",
            b"hello".to_vec(),
            Syntax("expected the stream header"),
            C::NotWellFormed,
        ),
        (
            "self-closing stream header",
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>".to_vec(),
            Syntax("the stream header must not be an empty element"),
            C::NotWellFormed,
        ),
        // Characters.
        (
            "control character in text",
            in_stream("<message><body>a\u{1}b</body></message>"),
            IllegalChar(1),
            C::NotWellFormed,
        ),
        (
            "NUL in an attribute",
            in_stream("<message id='\u{0}'/>"),
            IllegalChar(0),
            C::NotWellFormed,
        ),
        (
            "U+FFFF in text",
            in_stream("<message><body>\u{FFFF}</body></message>"),
            IllegalChar(0xFFFF),
            C::NotWellFormed,
        ),
        (
            "character reference to NUL",
            in_stream("<message><body>&#0;</body></message>"),
            BadCharRef("#0".into()),
            C::NotWellFormed,
        ),
        (
            "character reference to a surrogate",
            in_stream("<message><body>&#xD800;</body></message>"),
            BadCharRef("#xD800".into()),
            C::NotWellFormed,
        ),
        (
            "character reference out of range",
            in_stream("<message><body>&#x110000;</body></message>"),
            BadCharRef("#x110000".into()),
            C::NotWellFormed,
        ),
        (
            "malformed character reference",
            in_stream("<message><body>&#xZZ;</body></message>"),
            BadCharRef("#xZZ".into()),
            C::NotWellFormed,
        ),
        (
            "invalid UTF-8",
            [
                HEADER.as_bytes(),
                b"<message><body>\xC3\x28</body></message>",
            ]
            .concat(),
            InvalidUtf8,
            C::UnsupportedEncoding,
        ),
        (
            "overlong UTF-8",
            [
                HEADER.as_bytes(),
                b"<message><body>\xC0\xAF</body></message>",
            ]
            .concat(),
            InvalidUtf8,
            C::UnsupportedEncoding,
        ),
        (
            "non-UTF-8 encoding declared",
            b"<?xml version='1.0' encoding='ISO-8859-1'?>".to_vec(),
            UnsupportedEncoding("ISO-8859-1".into()),
            C::UnsupportedEncoding,
        ),
        // XML declaration.
        (
            "XML declaration after the header",
            in_stream("<?xml version='1.0'?>"),
            MisplacedXmlDecl,
            C::NotWellFormed,
        ),
        (
            "XML declaration in a stanza",
            in_stream("<message><?xml version='1.0'?></message>"),
            MisplacedXmlDecl,
            C::NotWellFormed,
        ),
        (
            "two XML declarations",
            b"<?xml version='1.0'?><?xml version='1.0'?>".to_vec(),
            MisplacedXmlDecl,
            C::NotWellFormed,
        ),
        (
            "XML declaration without version",
            b"<?xml encoding='UTF-8'?>".to_vec(),
            Syntax("the XML declaration lacks a version"),
            C::NotWellFormed,
        ),
        // Top level.
        (
            "text between stanzas",
            in_stream("hello"),
            TextAtTopLevel,
            C::BadFormat,
        ),
        (
            "CDATA between stanzas",
            in_stream("<![CDATA[x]]>"),
            TextAtTopLevel,
            C::BadFormat,
        ),
    ];
    for (what, input, want, cond) in cases {
        let got = error_of(&input, Limits::default());
        assert_eq!(got, want, "{what}");
        assert_eq!(got.condition(), cond, "{what}");
    }
}

#[test]
fn limits_hold_before_memory_is_spent() {
    let limits = Limits {
        max_stanza_size: 1024,
        max_depth: 8,
        max_attributes: 4,
        max_name_len: 16,
    };
    // A stanza over the size limit fails as soon as the limit is passed, without its end.
    let mut d = XmlDecoder::with_limits(limits.clone());
    let mut buf = BytesMut::from(in_stream("<message><body>").as_slice());
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(StreamEvent::Header(_)))
    ));
    assert_eq!(d.decode(&mut buf), Ok(None));
    let mut err = None;
    for _ in 0..100 {
        buf.extend_from_slice(&[b'x'; 100]);
        match d.decode(&mut buf) {
            Ok(None) => continue,
            Ok(Some(e)) => panic!("unexpected {e:?}"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err, Some(XmlError::StanzaTooLarge(1024)));
    assert!(buf.len() < 1200, "the decoder buffered {} bytes", buf.len());

    let deep = format!("<a>{}", "<a>".repeat(8));
    let cases: Vec<(&str, Vec<u8>, XmlError)> = vec![
        (
            "too deep (before the end arrives)",
            in_stream(&deep),
            XmlError::TooDeep(8),
        ),
        (
            "too many attributes",
            in_stream("<message a='1' b='2' c='3' d='4' e='5'/>"),
            XmlError::TooManyAttributes(4),
        ),
        (
            "element name too long",
            in_stream("<abcdefghijklmnopq/>"),
            XmlError::NameTooLong(16),
        ),
        (
            "attribute name too long",
            in_stream("<a abcdefghijklmnopq='1'/>"),
            XmlError::NameTooLong(16),
        ),
        (
            "header too large",
            format!("<stream:stream a='{}'>", "x".repeat(2000)).into_bytes(),
            XmlError::StanzaTooLarge(1024),
        ),
    ];
    for (what, input, want) in cases {
        let got = error_of(&input, limits.clone());
        assert_eq!(got, want, "{what}");
        assert_eq!(got.condition(), C::PolicyViolation, "{what}");
    }
    // Exactly at the limits is accepted.
    let ok = format!(
        "{HEADER}<a b='1' c='2' d='3' e='4'>{}{}</a>",
        "<a>".repeat(7),
        "</a>".repeat(7)
    );
    let mut d = XmlDecoder::with_limits(limits);
    let mut buf = BytesMut::from(ok.as_bytes());
    d.decode(&mut buf).unwrap();
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(StreamEvent::Element(_)))
    ));
}

#[test]
fn accepted_constructs() {
    let doc = "\u{FEFF}<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version=\"1.0\">\n\
        <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>\n \
        <message xml:lang='en' id=\"a&apos;b\" xmlns:x='urn:x' x:k='&#x41;'><body>1 &lt; 2 &amp;&amp; <![CDATA[<raw> & ]]> &#65;&#x1F600;</body><x:y/></message>\r\n\
        </stream:stream >";
    let mut d = XmlDecoder::new();
    let mut buf = BytesMut::from(doc.as_bytes());
    let mut events = Vec::new();
    while let Some(ev) = d.decode(&mut buf).unwrap() {
        events.push(ev);
    }
    assert!(buf.is_empty());
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Header(_) => "header",
            StreamEvent::Element(_) => "element",
            StreamEvent::KeepAlive => "ws",
            StreamEvent::Close => "close",
        })
        .collect();
    assert_eq!(
        kinds,
        ["header", "ws", "element", "ws", "element", "ws", "close"]
    );
    let StreamEvent::Element(features) = &events[2] else {
        unreachable!()
    };
    assert!(features.is("features", "http://etherx.jabber.org/streams"));
    let tls = features
        .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
        .unwrap();
    assert!(tls.has_child("required", "urn:ietf:params:xml:ns:xmpp-tls"));
    let StreamEvent::Element(msg) = &events[4] else {
        unreachable!()
    };
    assert_eq!(msg.ns(), "jabber:client");
    assert_eq!(msg.lang(), Some("en"));
    assert_eq!(msg.attr("id"), Some("a'b"));
    assert_eq!(msg.attr_ns("urn:x", "k"), Some("A"));
    assert_eq!(
        msg.get_child("body", "jabber:client").unwrap().text(),
        "1 < 2 && <raw> &  A😀"
    );
    assert!(msg.has_child("y", "urn:x"));
}

#[test]
fn utf8_split_between_reads() {
    let doc = in_stream("<message><body>h\u{e9}llo \u{1F600}</body></message>");
    // Cut inside every multi-byte character, one byte at a time.
    let mut d = XmlDecoder::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in &doc {
        buf.extend_from_slice(&[*b]);
        while let Some(ev) = d.decode(&mut buf).unwrap() {
            got.push(ev);
        }
    }
    let StreamEvent::Element(m) = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(
        m.get_child("body", "jabber:client").unwrap().text(),
        "h\u{e9}llo \u{1F600}"
    );
}

#[test]
fn stream_restart() {
    let mut d = XmlDecoder::new();
    let mut buf = BytesMut::from(in_stream("<a/>").as_slice());
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(StreamEvent::Header(_)))
    ));
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(StreamEvent::Element(_)))
    ));
    d.reset();
    buf.extend_from_slice(b"<?xml version='1.0'?>");
    buf.extend_from_slice(&in_stream("<b/>"));
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(StreamEvent::Header(_)))
    ));
    let Ok(Some(StreamEvent::Element(b))) = d.decode(&mut buf) else {
        panic!()
    };
    assert_eq!(b.name(), "b");
}
