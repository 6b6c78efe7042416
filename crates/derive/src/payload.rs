//! `#[derive(Payload)]`: reads the `#[payload(...)]` attributes into a description of the
//! element, then writes `from_element` (one pass over the attributes, one over the child
//! nodes, which are moved, not cloned) and `into_element`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, GenericArgument, Ident, LitStr, Path, Type};

/// The element the struct is.
struct Container {
    name: LitStr,
    ns: Expr,
    validate: Option<Path>,
    ignore_unknown_attrs: bool,
    ignore_unknown_children: bool,
}

/// How many times a field's item appears.
#[derive(Clone, Copy, PartialEq)]
enum Arity {
    One,
    Optional,
    Many,
}

/// What a field reads.
enum Kind {
    /// An attribute in no namespace.
    Attr { name: LitStr },
    /// The element's text.
    Text,
    /// A child in the element's namespace holding text only.
    TextChild { name: LitStr },
    /// An empty child in the element's namespace: present or not (`bool`).
    Flag { name: LitStr },
    /// A child read by its own `Payload` implementation.
    Child,
    /// A child element kept as it is: any name and namespace, or the given name.
    Element { name: Option<LitStr> },
}

struct Field {
    ident: Ident,
    /// The type inside `Option`/`Vec`.
    inner: Type,
    arity: Arity,
    kind: Kind,
    /// `default` (`Default::default()`) or `default = expr` when absent.
    default: Option<Option<Expr>>,
    /// A module with `parse(&str) -> Option<T>` and `format(T) -> String`.
    with: Option<Path>,
    /// A function `fn(&T) -> bool` the value must pass.
    check: Option<Path>,
    /// Not written when equal to the default.
    skip_default: bool,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let container = container(&input)?;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named
                .named
                .iter()
                .map(field)
                .collect::<syn::Result<Vec<_>>>()?,
            Fields::Unit => Vec::new(),
            Fields::Unnamed(_) => {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "Payload derives for structs with named fields or unit structs",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "Payload derives for structs",
            ));
        }
    };
    check_layout(&fields)?;
    let unit = matches!(&input.data, Data::Struct(s) if matches!(s.fields, Fields::Unit));
    let from = from_element(&container, &fields, unit);
    let into = into_element(&fields);
    let ty = &input.ident;
    let name = &container.name;
    let ns = &container.ns;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_g ::lithos_core::Payload for #ty #ty_g #where_g {
            const NS: &'static str = #ns;
            const NAME: &'static str = #name;
            #from
            #into
        }
    })
}

fn container(input: &DeriveInput) -> syn::Result<Container> {
    let mut name = None;
    let mut ns = None;
    let mut validate = None;
    let mut ignore_unknown_attrs = false;
    let mut ignore_unknown_children = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("payload")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("ns") {
                ns = Some(meta.value()?.parse::<Expr>()?);
            } else if meta.path.is_ident("validate") {
                validate = Some(meta.value()?.parse::<Path>()?);
            } else if meta.path.is_ident("ignore_unknown_attrs") {
                ignore_unknown_attrs = true;
            } else if meta.path.is_ident("ignore_unknown_children") {
                ignore_unknown_children = true;
            } else {
                return Err(meta.error(
                    "expected name, ns, validate, ignore_unknown_attrs or ignore_unknown_children",
                ));
            }
            Ok(())
        })?;
    }
    let span = input.ident.span();
    Ok(Container {
        name: name.unwrap_or_else(|| LitStr::new(&crate::kebab(&input.ident.to_string()), span)),
        ns: ns.ok_or_else(|| {
            syn::Error::new(
                span,
                "#[payload(ns = ...)] is required: the element's namespace",
            )
        })?,
        validate,
        ignore_unknown_attrs,
        ignore_unknown_children,
    })
}

/// `Option<T>` → (Optional, T); `Vec<T>` → (Many, T); else (One, ty).
fn arity(ty: &Type) -> (Arity, Type) {
    if let Type::Path(p) = ty
        && p.qself.is_none()
        && let Some(last) = p.path.segments.last()
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && args.args.len() == 1
        && let Some(GenericArgument::Type(inner)) = args.args.first()
    {
        if last.ident == "Option" {
            return (Arity::Optional, inner.clone());
        }
        if last.ident == "Vec" {
            return (Arity::Many, inner.clone());
        }
    }
    (Arity::One, ty.clone())
}

fn field(f: &syn::Field) -> syn::Result<Field> {
    let ident = f.ident.clone().expect("named field");
    let (arity, inner) = arity(&f.ty);
    let mut kind = None;
    let mut default = None;
    let mut with = None;
    let mut check = None;
    let mut skip_default = false;
    let mut element_name = None;
    let default_name = || LitStr::new(&crate::kebab(&ident.to_string()), ident.span());
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("payload")) {
        attr.parse_nested_meta(|meta| {
            let mut set = |k: Kind| {
                if kind.is_some() {
                    return Err(meta.error("a field reads one thing"));
                }
                kind = Some(k);
                Ok(())
            };
            let named = |meta: &syn::meta::ParseNestedMeta| -> syn::Result<LitStr> {
                if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<LitStr>()
                } else {
                    Ok(default_name())
                }
            };
            if meta.path.is_ident("attr") {
                let name = named(&meta)?;
                set(Kind::Attr { name })
            } else if meta.path.is_ident("text") {
                set(Kind::Text)
            } else if meta.path.is_ident("text_child") {
                let name = named(&meta)?;
                set(Kind::TextChild { name })
            } else if meta.path.is_ident("flag") {
                let name = named(&meta)?;
                set(Kind::Flag { name })
            } else if meta.path.is_ident("child") {
                set(Kind::Child)
            } else if meta.path.is_ident("element") {
                set(Kind::Element { name: None })
            } else if meta.path.is_ident("name") {
                element_name = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else if meta.path.is_ident("default") {
                default = Some(if meta.input.peek(syn::Token![=]) {
                    Some(meta.value()?.parse::<Expr>()?)
                } else {
                    None
                });
                Ok(())
            } else if meta.path.is_ident("with") {
                with = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else if meta.path.is_ident("skip_default") {
                skip_default = true;
                Ok(())
            } else if meta.path.is_ident("check") {
                check = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error(
                    "expected attr, text, text_child, flag, child, element, name, default, skip_default, with or check",
                ))
            }
        })?;
    }
    let mut kind = kind.ok_or_else(|| {
        syn::Error::new(
            f.span(),
            "say what the field reads: #[payload(attr | text | text_child | flag | child | element)]",
        )
    })?;
    if let Some(n) = element_name {
        match &mut kind {
            Kind::Element { name } => *name = Some(n),
            _ => return Err(syn::Error::new(n.span(), "`name` goes with `element`")),
        }
    }
    let valued = matches!(
        kind,
        Kind::Attr { .. } | Kind::Text | Kind::TextChild { .. }
    );
    if (with.is_some() || check.is_some()) && !valued {
        return Err(syn::Error::new(
            f.span(),
            "`with` and `check` go with attr, text and text_child",
        ));
    }
    if default.is_some() && (arity != Arity::One || !valued) {
        return Err(syn::Error::new(
            f.span(),
            "`default` goes with a non-Option attr, text or text_child",
        ));
    }
    if skip_default && default.is_none() {
        return Err(syn::Error::new(
            f.span(),
            "`skip_default` goes with `default`",
        ));
    }
    match (&kind, arity) {
        (Kind::Flag { .. }, Arity::One) => {}
        (Kind::Flag { .. }, _) => return Err(syn::Error::new(f.span(), "a flag is a bool")),
        (Kind::Attr { .. } | Kind::Text | Kind::TextChild { .. }, Arity::Many) => {
            return Err(syn::Error::new(
                f.span(),
                "an attribute or text appears once: use T or Option<T>",
            ));
        }
        _ => {}
    }
    Ok(Field {
        ident,
        inner,
        arity,
        kind,
        default,
        with,
        check,
        skip_default,
    })
}

/// Only one field may take the text, and only one may take any element.
fn check_layout(fields: &[Field]) -> syn::Result<()> {
    let texts = fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Text))
        .count();
    let any = fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Element { name: None }))
        .count();
    if texts > 1 || any > 1 {
        let f = fields.last().expect("fields");
        return Err(syn::Error::new(
            f.ident.span(),
            "one field at most takes the text, and one at most takes any element",
        ));
    }
    Ok(())
}

/// `let __v: T = <read>;` then the field's `check`: the value read plainly (`AttrValue`) or
/// through the field's `with` module, and `invalid` (a `PayloadError`) when the check fails.
fn read_value(
    f: &Field,
    plain: TokenStream,
    with: impl FnOnce(&Path) -> TokenStream,
    invalid: TokenStream,
) -> TokenStream {
    let inner = &f.inner;
    let read = match &f.with {
        Some(w) => with(w),
        None => plain,
    };
    let check = f.check.as_ref().map(|ch| {
        quote! {
            if !#ch(&__v) {
                return ::core::result::Result::Err(#invalid);
            }
        }
    });
    quote! { let __v: #inner = #read; #check }
}

/// [`read_value`] for text in `__t`, read for `element`.
fn read_text(f: &Field, s: &TokenStream, element: TokenStream) -> TokenStream {
    read_value(
        f,
        quote! { #s::text(#element, &__t)? },
        |w| quote! { #s::text_with(#element, &__t, #w::parse)? },
        quote! { #s::invalid_text(#element, &__t) },
    )
}

fn slot(f: &Field) -> Ident {
    format_ident!("__f_{}", f.ident)
}

fn from_element(c: &Container, fields: &[Field], unit: bool) -> TokenStream {
    let name = &c.name;
    let s = quote!(::lithos_core::payload::derive_support);
    let ok = quote!(::core::result::Result::Ok);
    let err = quote!(::core::result::Result::Err);
    let some = quote!(::core::option::Option::Some);
    let none = quote!(::core::option::Option::None);

    // One slot per field.
    let slots = fields.iter().map(|f| {
        let v = slot(f);
        let inner = &f.inner;
        match (&f.kind, f.arity) {
            (Kind::Flag { .. }, _) => quote! { let mut #v = false; },
            (_, Arity::Many) => {
                quote! { let mut #v: ::std::vec::Vec<#inner> = ::std::vec::Vec::new(); }
            }
            _ => quote! { let mut #v: ::core::option::Option<#inner> = #none; },
        }
    });

    // Attributes.
    let attr_arms: Vec<_> = fields
        .iter()
        .filter_map(|f| {
            let Kind::Attr { name: attr } = &f.kind else {
                return None;
            };
            let v = slot(f);
            let read = read_value(
                f,
                quote! { #s::attr(#name, #attr, __a.value_shared())? },
                |w| quote! { #s::attr_with(#name, #attr, __a.value_shared(), #w::parse)? },
                quote! { #s::invalid_attribute(#name, #attr, __a.value()) },
            );
            Some(quote! { #attr => { #read #v = #some(__v); } })
        })
        .collect();
    let unknown_attr = if c.ignore_unknown_attrs {
        quote! { continue; }
    } else {
        quote! { return #err(#s::unknown_attribute(#name, __a)); }
    };
    let attrs = if attr_arms.is_empty() {
        if c.ignore_unknown_attrs {
            quote! {}
        } else {
            quote! {
                if let #some(__a) = __el.attrs().first() {
                    return #err(#s::unknown_attribute(#name, __a));
                }
            }
        }
    } else {
        quote! {
            for __a in __el.attrs() {
                if !__a.ns().is_empty() {
                    #unknown_attr
                }
                match __a.name() {
                    #(#attr_arms)*
                    _ => { #unknown_attr }
                }
            }
        }
    };

    // Child elements, in order of precedence: flags and text children (by name in the
    // element's namespace), typed children, named elements, then any element.
    let mut tests = Vec::new();
    let dup = |child: TokenStream| {
        quote! {
            return #err(::lithos_core::PayloadError::DuplicateChild { element: #name, child: #child });
        }
    };
    for f in fields {
        let v = slot(f);
        match &f.kind {
            Kind::Flag { name: child } => {
                let d = dup(quote!(#child));
                tests.push(quote! {
                    if __c.is(#child, <Self as ::lithos_core::Payload>::NS) {
                        if #v { #d }
                        #s::flag(&__c, #child)?;
                        #v = true;
                        continue;
                    }
                });
            }
            Kind::TextChild { name: child } => {
                let d = dup(quote!(#child));
                let read = read_text(f, &s, quote!(#child));
                tests.push(quote! {
                    if __c.is(#child, <Self as ::lithos_core::Payload>::NS) {
                        if #v.is_some() { #d }
                        let __t = #s::text_only(__c, #child)?;
                        #read
                        #v = #some(__v);
                        continue;
                    }
                });
            }
            _ => {}
        }
    }
    for f in fields {
        let v = slot(f);
        let inner = &f.inner;
        if let Kind::Child = f.kind {
            let store = match f.arity {
                Arity::Many => quote! {
                    #v.push(<#inner as ::lithos_core::Payload>::from_element(__c)?);
                },
                _ => {
                    let d = dup(quote!(<#inner as ::lithos_core::Payload>::NAME));
                    quote! {
                        if #v.is_some() { #d }
                        #v = #some(<#inner as ::lithos_core::Payload>::from_element(__c)?);
                    }
                }
            };
            tests.push(quote! {
                if <#inner as ::lithos_core::Payload>::matches(&__c) {
                    #store
                    continue;
                }
            });
        }
    }
    let element_store = |f: &Field, label: TokenStream| {
        let v = slot(f);
        match f.arity {
            Arity::Many => quote! { #v.push(__c); },
            _ => {
                let d = dup(label);
                quote! {
                    if #v.is_some() { #d }
                    #v = #some(__c);
                }
            }
        }
    };
    for f in fields {
        if let Kind::Element { name: Some(child) } = &f.kind {
            let store = element_store(f, quote!(#child));
            tests.push(quote! {
                if __c.name() == #child {
                    #store
                    continue;
                }
            });
        }
    }
    for f in fields {
        if let Kind::Element { name: None } = &f.kind {
            let store = element_store(f, quote!("element"));
            tests.push(quote! {
                {
                    #store
                    continue;
                }
            });
        }
    }
    let takes_any = fields
        .iter()
        .any(|f| matches!(f.kind, Kind::Element { name: None }));
    let unknown_child = if c.ignore_unknown_children || takes_any {
        quote! {}
    } else {
        quote! { return #err(#s::unknown_child(#name, &__c)); }
    };
    let text_field = fields.iter().find(|f| matches!(f.kind, Kind::Text));
    let on_text = match text_field {
        Some(_) => quote! { #s::push_text(&mut __text, __t); },
        None if c.ignore_unknown_children => quote! { let _ = __t; },
        None => quote! {
            if !#s::is_whitespace(&__t) {
                return #err(::lithos_core::PayloadError::UnexpectedText { element: #name });
            }
        },
    };
    let text_slot = text_field.map(|_| {
        quote! { let mut __text: ::core::option::Option<::lithos_core::ByteString> = #none; }
    });
    let children = if tests.is_empty() && c.ignore_unknown_children {
        quote! {}
    } else {
        quote! {
            #text_slot
            for __n in __el.take_nodes() {
                match __n {
                    ::lithos_core::Node::Element(__c) => {
                        #(#tests)*
                        #unknown_child
                    }
                    ::lithos_core::Node::Text(__t) => { #on_text }
                }
            }
        }
    };
    // The text field reads what was gathered.
    let text_read = text_field.map(|f| {
        let v = slot(f);
        let read = read_text(f, &s, quote!(#name));
        // No text at all reads as "" only for a field without a default.
        let absent = if f.default.is_some() || f.arity == Arity::Optional {
            quote! {}
        } else {
            quote! { let __text = __text.or_else(|| #some(::lithos_core::ByteString::new())); }
        };
        quote! {
            #absent
            if let #some(__t) = __text {
                #read
                #v = #some(__v);
            }
        }
    });

    // Required values.
    let finish = fields.iter().map(|f| {
        let v = slot(f);
        let ident = &f.ident;
        let missing = match &f.kind {
            Kind::Attr { name: attr } => quote! {
                ::lithos_core::PayloadError::MissingAttribute { element: #name, attribute: #attr }
            },
            Kind::TextChild { name: child } | Kind::Element { name: Some(child) } => quote! {
                ::lithos_core::PayloadError::MissingChild { element: #name, child: #child }
            },
            Kind::Child => {
                let inner = &f.inner;
                quote! {
                    ::lithos_core::PayloadError::MissingChild {
                        element: #name,
                        child: <#inner as ::lithos_core::Payload>::NAME,
                    }
                }
            }
            Kind::Element { name: None } => quote! {
                ::lithos_core::PayloadError::MissingChild { element: #name, child: "element" }
            },
            // Always read (absent text reads as ""), and flags are plain bools.
            Kind::Text | Kind::Flag { .. } => quote! {},
        };
        let value = match (&f.kind, f.arity, &f.default) {
            (Kind::Flag { .. }, _, _) | (_, Arity::Many | Arity::Optional, _) => quote! { #v },
            (_, Arity::One, Some(Some(d))) => quote! { #v.unwrap_or_else(|| #d) },
            (_, Arity::One, Some(None)) => quote! { #v.unwrap_or_default() },
            (Kind::Text, Arity::One, None) => quote! {
                match #v { #some(__v) => __v, #none => ::core::unreachable!("the text is always read") }
            },
            (_, Arity::One, None) => quote! {
                match #v { #some(__v) => __v, #none => return #err(#missing) }
            },
        };
        quote! { #ident: #value, }
    });
    let construct = if unit {
        quote! { Self }
    } else {
        quote! { Self { #(#finish)* } }
    };
    let validate = c.validate.as_ref().map(|p| quote! { #p(&__value)?; });
    let mutable = if children.is_empty() {
        quote! {}
    } else {
        quote! { mut }
    };
    quote! {
        fn from_element(
            #mutable __el: ::lithos_core::Element,
        ) -> ::core::result::Result<Self, ::lithos_core::PayloadError> {
            ::lithos_core::PayloadError::check_name::<Self>(&__el)?;
            #(#slots)*
            #attrs
            #children
            #text_read
            let __value = #construct;
            #validate
            #ok(__value)
        }
    }
}

fn into_element(fields: &[Field]) -> TokenStream {
    let value = |f: &Field, v: TokenStream| match &f.with {
        Some(w) => quote! { ::lithos_core::ByteString::from(#w::format(#v)) },
        None => quote! { ::lithos_core::payload::AttrValue::into_attr(#v) },
    };
    let each = |f: &Field, one: TokenStream| {
        let ident = &f.ident;
        match f.arity {
            Arity::One if f.skip_default => {
                let inner = &f.inner;
                let d = match &f.default {
                    Some(Some(d)) => quote! { #d },
                    _ => quote! { <#inner as ::core::default::Default>::default() },
                };
                quote! { { let __v: #inner = self.#ident; if __v != #d { #one } } }
            }
            Arity::One => quote! { { let __v = self.#ident; #one } },
            Arity::Optional => {
                quote! { if let ::core::option::Option::Some(__v) = self.#ident { #one } }
            }
            Arity::Many => quote! { for __v in self.#ident { #one } },
        }
    };
    let mut attrs = Vec::new();
    let mut children = Vec::new();
    let mut text = None;
    for f in fields {
        let ident = &f.ident;
        match &f.kind {
            Kind::Attr { name } => {
                let v = value(f, quote!(__v));
                attrs.push(each(f, quote! { __b = __b.attr(#name, #v); }));
            }
            Kind::Text => {
                let v = value(f, quote!(__v));
                text = Some(each(f, quote! { __b = __b.text(#v); }));
            }
            Kind::TextChild { name } => {
                let v = value(f, quote!(__v));
                children.push(each(
                    f,
                    quote! {
                        __b = __b.child(
                            ::lithos_core::Element::builder(#name, <Self as ::lithos_core::Payload>::NS)
                                .text(#v)
                                .build(),
                        );
                    },
                ));
            }
            Kind::Flag { name } => children.push(quote! {
                if self.#ident {
                    __b = __b.child(::lithos_core::Element::bare(
                        #name,
                        <Self as ::lithos_core::Payload>::NS,
                    ));
                }
            }),
            // Repeated children go in with one `extend`, sized from the vector.
            Kind::Child if f.arity == Arity::Many => children.push(quote! {
                __b = __b.children(
                    self.#ident.into_iter().map(::lithos_core::Payload::into_element),
                );
            }),
            Kind::Element { .. } if f.arity == Arity::Many => {
                children.push(quote! { __b = __b.children(self.#ident); })
            }
            Kind::Child => children.push(each(
                f,
                quote! { __b = __b.child(::lithos_core::Payload::into_element(__v)); },
            )),
            Kind::Element { .. } => children.push(each(f, quote! { __b = __b.child(__v); })),
        }
    }
    let mutable = if fields.is_empty() {
        quote! {}
    } else {
        quote! { mut }
    };
    quote! {
        fn into_element(self) -> ::lithos_core::Element {
            let #mutable __b = ::lithos_core::Element::builder(
                <Self as ::lithos_core::Payload>::NAME,
                <Self as ::lithos_core::Payload>::NS,
            );
            #(#attrs)*
            #(#children)*
            #text
            __b.build()
        }
    }
}
