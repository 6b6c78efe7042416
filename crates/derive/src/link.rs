//! `link_extensions!()`: one `use <crate> as _;` per `lithos-*` dependency of the caller.
//!
//! Rust links a dependency's object code only when the program names the crate; what an
//! extension registers through `inventory` lives in statics nobody names, and rustc keeps a
//! named crate's `#[used]` statics. Naming each crate once is enough, and the manifest already
//! lists them.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

pub(crate) fn expand() -> syn::Result<TokenStream> {
    let err = |msg: String| syn::Error::new(Span::call_site(), msg);
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .ok_or_else(|| err("link_extensions!() runs under Cargo (no CARGO_MANIFEST_DIR)".into()))?;
    let manifest = PathBuf::from(dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| err(format!("cannot read {}: {e}", manifest.display())))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| err(format!("cannot parse {}: {e}", manifest.display())))?;
    let own = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    let mut crates = Vec::new();
    if let Some(deps) = doc.get("dependencies").and_then(|d| d.as_table()) {
        for (name, spec) in deps {
            let optional = spec
                .get("optional")
                .and_then(|o| o.as_bool())
                .unwrap_or(false);
            if name.starts_with("lithos-") && !optional && *name != own {
                crates.push(format_ident!("{}", name.replace('-', "_")));
            }
        }
    }
    let path = manifest.to_string_lossy().into_owned();
    Ok(quote! {
        // Rebuilt when the manifest changes.
        const _: &[u8] = ::core::include_bytes!(#path);
        #(
            #[allow(unused_imports)]
            use #crates as _;
        )*
    })
}
