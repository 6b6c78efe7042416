//! `#[derive(AttrValue)]`: unit-variant enums as attribute (or text) values.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr};

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "AttrValue derives for enums of unit variants",
        ));
    };
    let mut parse_arms = Vec::new();
    let mut write_arms = Vec::new();
    let mut seen = Vec::<String>::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                v,
                "AttrValue variants carry no data",
            ));
        }
        let mut literal = crate::kebab(&v.ident.to_string());
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("payload")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("value") {
                    literal = meta.value()?.parse::<LitStr>()?.value();
                    Ok(())
                } else {
                    Err(meta.error("expected `value = \"…\"`"))
                }
            })?;
        }
        if seen.contains(&literal) {
            return Err(syn::Error::new_spanned(
                v,
                format!("two variants read as {literal:?}"),
            ));
        }
        seen.push(literal.clone());
        let ident = &v.ident;
        parse_arms.push(quote! { #literal => ::core::option::Option::Some(Self::#ident), });
        write_arms.push(quote! {
            Self::#ident => ::lithos_core::ByteString::from_static(#literal),
        });
    }
    let name = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_g ::lithos_core::payload::AttrValue for #name #ty_g #where_g {
            fn parse_attr(s: &::lithos_core::ByteString) -> ::core::option::Option<Self> {
                match &**s {
                    #(#parse_arms)*
                    _ => ::core::option::Option::None,
                }
            }
            fn into_attr(self) -> ::lithos_core::ByteString {
                match self {
                    #(#write_arms)*
                }
            }
        }
    })
}
