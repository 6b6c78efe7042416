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
/// Entries, separated by commas:
///
/// - `table: &str`: the crate's BXMPP keyword table (a `TableRegistration` named after the
///   crate); or `table_file: "name.props"`, which also declares `pub const BXMPP_TABLE` with
///   the contents of the crate's `tables/name.props`;
/// - `server: [..]`: what the crate registers behind its `server` feature: its
///   `ModuleRegistration`s and `ModuleSchema`s (from `lithos-server`);
/// - `client: [..]`: what it registers behind its `client` feature: `ClientPlugin`s (from
///   `lithos-client`);
/// - `module: ..`, `schema: ..`, `plugin: ..`, `model: ..` (a `ThingModel` from
///   `lithos-tuxp-things`): one registration, whatever the features, optionally behind
///   attributes such as `#[cfg(...)]`.
///
/// Each value is a constant or a constant expression.
///
/// ```ignore
/// lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE], client: [client::PLUGIN] }
/// ```
#[macro_export]
macro_rules! extension {
    ($($entries:tt)*) => {
        $crate::inventory::submit! {
            $crate::extension::LinkedCrate {
                name: ::core::env!("CARGO_PKG_NAME"),
                description: ::core::env!("CARGO_PKG_DESCRIPTION"),
                version: ::core::env!("CARGO_PKG_VERSION"),
            }
        }
        $crate::__extension_entries!($($entries)*);
    };
}

/// The entries of [`extension!`](crate::extension!), one at a time.
#[doc(hidden)]
#[macro_export]
macro_rules! __extension_entries {
    () => {};
    (server: [$($e:expr),* $(,)?] $(, $($rest:tt)*)?) => {
        $(
            #[cfg(feature = "server")]
            $crate::inventory::submit! { $e }
        )*
        $($crate::__extension_entries!($($rest)*);)?
    };
    (client: [$($e:expr),* $(,)?] $(, $($rest:tt)*)?) => {
        $(
            #[cfg(feature = "client")]
            $crate::inventory::submit! { $e }
        )*
        $($crate::__extension_entries!($($rest)*);)?
    };
    (table_file: $file:literal $(, $($rest:tt)*)?) => {
        #[doc = ::core::concat!("This crate's BXMPP keyword table (`tables/", $file, "`).")]
        pub const BXMPP_TABLE: &str =
            ::core::include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/tables/", $file));
        $crate::__extension_entries!(table: BXMPP_TABLE $(, $($rest)*)?);
    };
    ($(#[$m:meta])* table: $e:expr $(, $($rest:tt)*)?) => {
        $(#[$m])*
        $crate::inventory::submit! {
            $crate::binary::TableRegistration {
                name: ::core::env!("CARGO_PKG_NAME"),
                properties: $e,
            }
        }
        $($crate::__extension_entries!($($rest)*);)?
    };
    ($(#[$m:meta])* $kind:ident: $e:expr $(, $($rest:tt)*)?) => {
        $crate::__extension_kind!($kind);
        $(#[$m])*
        $crate::inventory::submit! { $e }
        $($crate::__extension_entries!($($rest)*);)?
    };
}

/// Refuses an entry kind [`extension!`](crate::extension!) does not know.
#[doc(hidden)]
#[macro_export]
macro_rules! __extension_kind {
    (module) => {};
    (schema) => {};
    (plugin) => {};
    (model) => {};
    ($other:ident) => {
        ::core::compile_error!(::core::concat!(
            "extension! takes table, server: [..], client: [..], module, schema, plugin or model, not ",
            ::core::stringify!($other)
        ));
    };
}
