//! Replays every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`) through the
//! property that target checks, so a fixed crash stays fixed.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let data = std::fs::read(&path).expect("readable input");
        check(&data);
        n += 1;
    }
    n
}

/// libFuzzer hands `&str` targets the longest valid UTF-8 prefix of the input.
fn as_str(data: &[u8]) -> &str {
    match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid prefix"),
    }
}

#[test]
fn xml_stream_regressions() {
    assert!(replay("xml_stream", lithos_core::fuzzing::xml_stream) >= 1);
}

#[test]
fn jid_regressions() {
    assert!(replay("jid", |d| lithos_core::fuzzing::jid(as_str(d))) >= 1);
}

#[test]
fn element_roundtrip_regressions() {
    replay("element_roundtrip", |d| {
        lithos_core::fuzzing::element_roundtrip(as_str(d))
    });
}

#[test]
fn bxmpp_stream_regressions() {
    replay("bxmpp_stream", lithos_core::fuzzing::bxmpp_stream);
}

#[test]
fn bxmpp_to_xml_regressions() {
    assert!(replay("bxmpp_to_xml", lithos_core::fuzzing::bxmpp_to_xml) >= 1);
}

#[test]
fn lan_frame_regressions() {
    replay("lan_frame", lithos_core::fuzzing::lan_frame);
}
