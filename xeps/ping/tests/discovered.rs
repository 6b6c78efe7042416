//! A binary that names this crate and nothing in it finds its module and table through
//! inventory: the server hard-codes no module list.

use lithos_ping as _;

#[test]
fn the_module_is_discovered() {
    let names: Vec<_> = lithos_server::module::registered()
        .iter()
        .map(|r| r.name)
        .collect();
    assert!(names.contains(&"ping"), "registered modules: {names:?}");
    let vocab = lithos_core::binary::Vocabulary::linked().unwrap();
    assert_eq!(
        vocab.extension_for_ns("urn:xmpp:ping").unwrap().code(),
        Some([0xF9, 0x05])
    );
}
