//! A binary that depends on this crate, and calls nothing of it but `link()`, finds its module
//! through inventory: the server hard-codes no module list.

#[test]
fn the_module_is_discovered() {
    lithos_ping::link();
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
