//! What an extension crate registers, declared once: [`extension!`](crate::extension!).
//!
//! Every crate under `xeps/` ends its `lib.rs` with one `extension!` block naming its BXMPP
//! keyword table, its server module and storage schema (behind the `server` feature), its
//! client plugin (behind `client`) and any thing model. The macro registers each through
//! `inventory`, plus a [`LinkedCrate`] record naming the crate, so a program can list the
//! crates it links ([`linked`]). A program links the crates it depends on with
//! [`link_extensions!`](crate::link_extensions): no hand-kept list, nothing dropped
//! silently.

/// An extension crate linked into the program, registered by [`extension!`](crate::extension!).
#[derive(Debug)]
pub struct LinkedCrate {
    /// The package name (`lithos-ping`).
    pub name: &'static str,
    /// The package description.
    pub description: &'static str,
    /// The package version.
    pub version: &'static str,
}

inventory::collect!(LinkedCrate);

/// The extension crates linked into this program, sorted by name.
pub fn linked() -> Vec<&'static LinkedCrate> {
    let mut all: Vec<_> = inventory::iter::<LinkedCrate>.into_iter().collect();
    all.sort_by_key(|e| e.name);
    all
}

/// Declares what an extension crate registers, once, in its `lib.rs`.
///
/// Each entry is `kind: EXPR`, optionally behind attributes such as
/// `#[cfg(feature = "server")]`:
///
/// - `table: &str`: the crate's BXMPP keyword table (a `TableRegistration` named after the
///   crate);
/// - `module: ModuleRegistration` (from `lithos-server`), `schema: ModuleSchema`,
///   `client: ClientPlugin` (from `lithos-client`), `model: ThingModel` (from
///   `lithos-tuxp-things`): submitted as they are (a constant or a constant expression).
///
/// ```ignore
/// lithos_core::extension! {
///     table: BXMPP_TABLE,
///     #[cfg(feature = "server")]
///     module: server::MODULE,
///     #[cfg(feature = "client")]
///     client: client::PLUGIN,
/// }
/// ```
#[macro_export]
macro_rules! extension {
    ($($(#[$m:meta])* $kind:ident : $e:expr),* $(,)?) => {
        $crate::inventory::submit! {
            $crate::extension::LinkedCrate {
                name: ::core::env!("CARGO_PKG_NAME"),
                description: ::core::env!("CARGO_PKG_DESCRIPTION"),
                version: ::core::env!("CARGO_PKG_VERSION"),
            }
        }
        $( $crate::__extension_entry!($(#[$m])* $kind: $e); )*
    };
}

/// One entry of [`extension!`](crate::extension!).
#[doc(hidden)]
#[macro_export]
macro_rules! __extension_entry {
    ($(#[$m:meta])* table: $e:expr) => {
        $(#[$m])*
        $crate::inventory::submit! {
            $crate::binary::TableRegistration {
                name: ::core::env!("CARGO_PKG_NAME"),
                properties: $e,
            }
        }
    };
    ($(#[$m:meta])* module: $e:expr) => { $(#[$m])* $crate::inventory::submit! { $e } };
    ($(#[$m:meta])* schema: $e:expr) => { $(#[$m])* $crate::inventory::submit! { $e } };
    ($(#[$m:meta])* client: $e:expr) => { $(#[$m])* $crate::inventory::submit! { $e } };
    ($(#[$m:meta])* model: $e:expr) => { $(#[$m])* $crate::inventory::submit! { $e } };
    ($(#[$m:meta])* $other:ident: $e:expr) => {
        ::core::compile_error!(::core::concat!(
            "extension! registers table, module, schema, client or model, not ",
            ::core::stringify!($other)
        ));
    };
}
