//! Shared material for the Lithos benchmarks: the stanza corpus and the parse routines of
//! each contender, so the criterion benchmark and the interleaved ratio tool measure the same
//! code; and [`BenchServer`], the in-process server of the whole-server benchmarks.

// Every extension crate of lithosd, linked with it.
use lithosd as _;
use std::hint::black_box;

use bytes::BytesMut;
use lithos_core::StreamEvent;
use lithos_core::xml::XmlDecoder;
use quick_xml::events::Event;
use quick_xml::reader::NsReader;

/// The stream header every corpus starts with.
pub const STREAM_OPEN: &str = "<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// The closing tag.
pub const STREAM_CLOSE: &str = "</stream:stream>";

/// A one-to-one chat message with the usual decorations (chat state, receipt request,
/// origin id).
pub const CHAT: &str = "<message from='juliet@capulet.example/balcony' to='romeo@montague.example/orchard' \
type='chat' id='b4vs9km4' xml:lang='en'><body>Wherefore art thou, Romeo? Deny thy father &amp; refuse thy name.</body>\
<thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread>\
<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>\
<origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/></message>";

/// An available presence with entity capabilities and a vCard avatar hash.
pub const PRESENCE: &str = "<presence from='romeo@montague.example/orchard' xml:lang='en'>\
<show>away</show><status>In the orchard</status><priority>5</priority>\
<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/>\
<x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d</photo></x></presence>";

/// A TUXP sensor report from a thing.
pub const IOT_REPORT: &str = "<iq type='set' id='rep-00042' from='HLT-3A7F19C2@iot.example/0' to='iot.example'>\
<report xmlns='urn:leps:tuxp:sensor' qos='1'>\
<celsius-degree xmlns='urn:leps:things:simple-temperature-reporter' value='23.5'/></report></iq>";

/// A groupchat message with a stanza id and MUC user info.
pub const MUC: &str = "<message from='coven@chat.shakespeare.lit/thirdwitch' \
id='162BEBB1-F6DB-4D9A-9BD8-CFDCC801A0B2' to='hecate@shakespeare.lit/broom' type='groupchat'>\
<body>Thrice the brinded cat hath mew&apos;d.</body>\
<stanza-id xmlns='urn:xmpp:sid:0' id='5f3dbc5e-e1d3-4077-a492-693f3769c7ad' by='coven@chat.shakespeare.lit'/>\
<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant' jid='hag66@shakespeare.lit/pda'/></x>\
</message>";

/// A roster result with `n` items.
pub fn roster(n: usize) -> String {
    let mut s = String::from(
        "<iq id='r1' type='result' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver14'>",
    );
    for i in 0..n {
        s.push_str(&format!(
            "<item jid='contact{i}@example.net' name='Contact number {i}' subscription='both'><group>Friends</group></item>"
        ));
    }
    s.push_str("</query></iq>");
    s
}

/// The named stanzas of the corpus (the roster with 200 items).
pub fn corpus() -> Vec<(&'static str, String)> {
    vec![
        ("chat", CHAT.to_string()),
        ("presence-caps", PRESENCE.to_string()),
        ("roster-200", roster(200)),
        ("iot-report", IOT_REPORT.to_string()),
        ("muc", MUC.to_string()),
    ]
}

/// A whole stream: the header, `stanza` repeated until about `bytes` long, the close.
/// Returns the stream and the number of stanzas in it.
pub fn stream_of(stanza: &str, bytes: usize) -> (String, usize) {
    let n = (bytes / stanza.len()).max(1);
    let mut s = String::with_capacity(STREAM_OPEN.len() + n * stanza.len() + STREAM_CLOSE.len());
    s.push_str(STREAM_OPEN);
    for _ in 0..n {
        s.push_str(stanza);
    }
    s.push_str(STREAM_CLOSE);
    (s, n)
}

/// Ours: streaming decode into element trees, one per stanza. Returns the stanza count.
///
/// The input comes in the buffer a framed socket reader would have filled, so copying it there
/// is not part of what is measured (nor is it for the peers, which read from a `&str`).
pub fn lithos_parse(mut buf: BytesMut) -> usize {
    let mut d = XmlDecoder::new();
    let mut n = 0;
    while let Some(ev) = d.decode(&mut buf).expect("valid corpus") {
        if let StreamEvent::Element(e) = ev {
            black_box(&e);
            n += 1;
        }
    }
    n
}

/// quick-xml's `NsReader`: every event with its namespace resolved; no tree, nothing
/// unescaped, attributes not read (so not checked). Returns the event count.
pub fn quick_xml_events(input: &str) -> usize {
    let mut r = NsReader::from_str(input);
    let mut n = 0;
    loop {
        match r.read_resolved_event().expect("valid corpus") {
            (_, Event::Eof) => break,
            (ns, ev) => {
                black_box((&ns, &ev));
                n += 1;
            }
        }
    }
    n
}

/// quick-xml as [`quick_xml_events`], also reading each start tag's attributes and resolving
/// their namespaces (quick-xml checks attributes only when they are read).
pub fn quick_xml_events_attrs(input: &str) -> usize {
    let mut r = NsReader::from_str(input);
    let mut n = 0;
    loop {
        let (_, ev) = r.read_resolved_event().expect("valid corpus");
        match ev {
            Event::Eof => break,
            Event::Start(ref s) | Event::Empty(ref s) => {
                for a in s.attributes() {
                    let a = a.expect("valid attribute");
                    black_box(r.resolver().resolve_attribute(a.key));
                    black_box(&a.value);
                }
            }
            _ => {}
        }
        black_box(&ev);
        n += 1;
    }
    n
}

/// minidom: the whole stream parsed as one tree. Returns the stanza count.
pub fn minidom_parse(input: &str) -> usize {
    let root: minidom::Element = input.parse().expect("valid corpus");
    root.children().count()
}

/// Stanzas for comparing BXMPP with XML: ones every vocabulary word of which is in the tables
/// the linked crates register. Each is written as it appears in a `jabber:client` stream.
/// The roster has 100 items: a BXMPP element carries at most 127 children.
pub fn binary_corpus() -> Vec<(&'static str, String)> {
    vec![
        ("chat", "<message from='juliet@capulet.example/balcony' to='romeo@montague.example/orchard' \
type='chat' id='b4vs9km4' xml:lang='en'><body>Wherefore art thou, Romeo? Deny thy father &amp; refuse thy name.</body>\
<thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>".to_string()),
        ("presence", "<presence from='romeo@montague.example/orchard' xml:lang='en'>\
<show>away</show><status>In the orchard</status><priority>5</priority></presence>".to_string()),
        ("roster-100", roster(100)),
        ("notification", "<iq type=\"set\" id=\"n1\"><notification xmlns=\"urn:leps:tuxp:thing\" ack-required=\"true\">\
<switch-state-changed xmlns=\"urn:leps:things:simple-light\" previous=\"0\" current=\"2\"/></notification></iq>".to_string()),
        ("report", "<iq type='set' id='rep-00042' from='HLT-3A7F19C2@iot.example/0' to='iot.example'>\
<report xmlns='urn:leps:tuxp:sensor' qos='1'><celsius-degree xmlns='urn:leps:things:simple-temperature-reporter' value='23.5'/></report></iq>".to_string()),
        ("execution", "<iq type='set' id='exec1' to='gw@iot.example/3'><execution xmlns='urn:leps:tuxp:actuator' \
lan-traceable='true' lan-timeout='5000'><flash xmlns='urn:leps:things:simple-light' repeat='3'/></execution></iq>".to_string()),
    ]
}

/// The vocabulary for [`binary_corpus`]: the tables the linked crates register (the TUXP
/// crates and `lithos-things-demo` bring theirs).
pub fn binary_vocabulary() -> lithos_core::binary::Vocabulary {
    lithos_core::binary::Vocabulary::linked().expect("linked tables")
}

/// The LAN execution of the reference: as XML, and the element it is.
pub const LAN_EXECUTION_XML: &str = "<lan-execution xmlns='urn:leps:tuxp:actuator' trace-id='$B[AAsX0+U=]'>\
<flash xmlns='urn:leps:things:simple-light' repeat='3'/></lan-execution>";

/// A BXMPP stream: the header document, `stanza` (given as XML) encoded and repeated until the
/// stream is about `bytes` long, the close. Returns the bytes and the stanza count.
pub fn binary_stream_of(
    vocab: &lithos_core::binary::Vocabulary,
    stanza: &str,
    bytes: usize,
) -> (Vec<u8>, usize) {
    let el = parse_stanza(stanza);
    let doc = lithos_core::binary::encode_document(vocab, &el).expect("encodable stanza");
    let n = (bytes / doc.len()).max(1);
    let mut out = vec![
        0xFF, 0xFA, 0x02, 0x00, 0x02, 0x03, 0xFE, 0x07, 0x31, 0x2E, 0x30, 0xFF,
    ];
    for _ in 0..n {
        out.extend_from_slice(&doc);
    }
    out.extend_from_slice(&[0xFF, 0xFA, 0xFF]);
    (out, n)
}

/// Parses a stanza written as in a `jabber:client` stream (no `xmlns` on the root).
pub fn parse_stanza(stanza: &str) -> lithos_core::Element {
    let end = stanza[1..]
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .expect("a root element")
        + 1;
    lithos_core::Element::parse(&format!(
        "{} xmlns='jabber:client'{}",
        &stanza[..end],
        &stanza[end..]
    ))
    .expect("valid stanza")
}

/// Ours, BXMPP: decodes a stream into elements. Returns the stanza count.
pub fn bxmpp_parse(codec: &mut lithos_core::binary::BxmppCodec, mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Some(ev) = codec.decode_event(&mut buf).expect("valid stream") {
        if let StreamEvent::Element(e) = ev {
            black_box(&e);
            n += 1;
        }
    }
    n
}

/// A `lithosd` (every module linked) on loopback, for the whole-server benchmarks: on its
/// own two-thread runtime, with a fresh data directory, ephemeral ports for the client and
/// things listeners, warnings-only logs, and `extra` appended to the configuration.
pub struct BenchServer {
    /// The data directory (the TLS certificate is `tls/cert.pem` in it).
    pub dir: tempfile::TempDir,
    /// The server's runtime.
    pub runtime: tokio::runtime::Runtime,
    /// The server.
    pub server: lithos_server::RunningServer,
}

impl BenchServer {
    /// Starts it; panics if it cannot (a benchmark has nothing else to do then).
    pub fn start(extra: &str) -> BenchServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = lithos_server::Config::parse(&format!(
            "domain = 'localhost'\ndata_dir = '{}'\n[log]\nlevel = 'warn'\n\
             [things]\nlisten = ['127.0.0.1:0']\n[http]\nlisten = []\n[c2s]\nlisten = ['127.0.0.1:0']\ndirect_tls = []\n\
             {extra}",
            dir.path().display()
        ))
        .expect("config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(lithos_server::RunningServer::start(config))
            .expect("the server starts");
        BenchServer {
            dir,
            runtime,
            server,
        }
    }
}
