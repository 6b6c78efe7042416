//! # lithos-derive
//!
//! The macros behind Lithos's extension kit, used through `lithos_core` (which re-exports
//! them; depend on `lithos-core`, not on this crate):
//!
//! - `#[derive(Payload)]`: a struct becomes a typed XMPP payload, read strictly (unknown or
//!   repeated attributes and children are errors unless the type says otherwise) and written
//!   back. The attributes are documented on `lithos_core::Payload`.
//! - `#[derive(AttrValue)]`: an enum of unit variants becomes a value an attribute or a text
//!   node holds, each variant one literal.
//! - `link_extensions!()`: links every `lithos-*` crate the calling package depends on, so
//!   what they register through `inventory` is in the program, with no hand-kept list.

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

mod attr_value;
mod link;
mod payload;

/// Implements `lithos_core::Payload` for a struct; see `lithos_core::Payload` for the
/// `#[payload(...)]` attributes.
#[proc_macro_derive(Payload, attributes(payload))]
pub fn derive_payload(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    payload::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `lithos_core::payload::AttrValue` for an enum of unit variants: each reads and
/// writes as its `#[payload(value = "…")]`, or its name in kebab case.
#[proc_macro_derive(AttrValue, attributes(payload))]
pub fn derive_attr_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    attr_value::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Links every non-optional `lithos-*` dependency of the calling package (its
/// `[dependencies]`), so that the modules, plugins and tables they register are in the
/// program. Expands to one `use <crate> as _;` per dependency.
#[proc_macro]
pub fn link_extensions(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "link_extensions!() takes no arguments",
        )
        .into_compile_error()
        .into();
    }
    link::expand()
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// `field_name` → `field-name`; `VariantName` → `variant-name`.
pub(crate) fn kebab(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, ch) in ident.chars().enumerate() {
        if ch == '_' {
            out.push('-');
        } else if ch.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}
