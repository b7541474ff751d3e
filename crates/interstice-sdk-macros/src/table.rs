//! `#[table]`: a row struct becomes a table with a typed handle.

use crate::names::{is_integer, table_name};
use crate::types::struct_impl;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Fields, ItemStruct, Meta, Token};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Hash,
    BTree,
}

struct Index {
    field: usize,
    kind: Kind,
    unique: bool,
    auto_inc: bool,
}

struct Options {
    persistence: Option<(&'static str, Span)>,
    name: Option<String>,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        persistence: None,
        name: None,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    for meta in metas {
        match &meta {
            Meta::Path(p) => {
                let word = p.get_ident().map(|i| i.to_string()).unwrap_or_default();
                let persistence = match word.as_str() {
                    "logged" => "Logged",
                    "stateful" => "Stateful",
                    "ephemeral" => "Ephemeral",
                    _ => {
                        return Err(syn::Error::new_spanned(
                            p,
                            "unknown table option: expected `stateful`, `ephemeral`, `logged` or `name = \"...\"`",
                        ));
                    }
                };
                if options.persistence.is_some() {
                    return Err(syn::Error::new_spanned(
                        p,
                        "only one persistence keyword (logged, stateful, ephemeral) may be used per table",
                    ));
                }
                options.persistence = Some((persistence, p.span()));
            }
            Meta::NameValue(nv) if nv.path.is_ident("name") => {
                let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                else {
                    return Err(syn::Error::new_spanned(&nv.value, "expected a string"));
                };
                options.name = Some(s.value());
            }
            other => {
                return Err(syn::Error::new_spanned(other, "unknown table option"));
            }
        }
    }
    Ok(options)
}

/// Parses `#[index(...)]` or `#[primary_key(...)]` words.
fn words(meta: &Meta) -> syn::Result<Vec<syn::Ident>> {
    match meta {
        Meta::Path(_) => Ok(Vec::new()),
        Meta::List(list) => Ok(Punctuated::<syn::Ident, Token![,]>::parse_terminated
            .parse2(list.tokens.clone())?
            .into_iter()
            .collect()),
        Meta::NameValue(nv) => Err(syn::Error::new_spanned(nv, "expected a list of words")),
    }
}

/// Reads the columns' `#[primary_key]` and `#[index]` attributes (and takes them off the
/// fields): the primary key's position, whether it is `auto_inc`, and the indexes.
fn parse_columns(
    named: &mut syn::FieldsNamed,
    ident: &syn::Ident,
) -> syn::Result<(usize, bool, Vec<Index>)> {
    let mut primary: Option<(usize, bool)> = None;
    let mut indexes = Vec::new();
    for (position, field) in named.named.iter_mut().enumerate() {
        let mut kept = Vec::new();
        for attr in field.attrs.drain(..) {
            if attr.path().is_ident("primary_key") {
                let words = words(&attr.meta)?;
                let mut auto_inc = false;
                for w in &words {
                    if w == "auto_inc" {
                        auto_inc = true;
                    } else {
                        return Err(syn::Error::new_spanned(w, "expected `auto_inc`"));
                    }
                }
                if primary.is_some() {
                    return Err(syn::Error::new_spanned(
                        &attr,
                        "a table has exactly one #[primary_key]",
                    ));
                }
                if auto_inc && !is_integer(&field.ty) {
                    return Err(syn::Error::new_spanned(
                        &field.ty,
                        "auto_inc is supported for integer types only (u8, u16, u32, u64, i8, i16, i32, i64)",
                    ));
                }
                primary = Some((position, auto_inc));
            } else if attr.path().is_ident("index") {
                let words = words(&attr.meta)?;
                let mut kind = None;
                let (mut unique, mut auto_inc) = (false, false);
                for w in &words {
                    match w.to_string().as_str() {
                        "hash" if kind.is_none() => kind = Some(Kind::Hash),
                        "btree" if kind.is_none() => kind = Some(Kind::BTree),
                        "unique" => unique = true,
                        "auto_inc" => auto_inc = true,
                        _ => {
                            return Err(syn::Error::new_spanned(
                                w,
                                "expected `hash` or `btree`, optionally with `unique` and `auto_inc`",
                            ));
                        }
                    }
                }
                let Some(kind) = kind else {
                    return Err(syn::Error::new_spanned(
                        &attr,
                        "an index needs a kind: #[index(hash)] or #[index(btree)]",
                    ));
                };
                if auto_inc && !is_integer(&field.ty) {
                    return Err(syn::Error::new_spanned(
                        &field.ty,
                        "auto_inc is supported for integer types only (u8, u16, u32, u64, i8, i16, i32, i64)",
                    ));
                }
                indexes.push(Index {
                    field: position,
                    kind,
                    unique,
                    auto_inc,
                });
            } else {
                kept.push(attr);
            }
        }
        field.attrs = kept;
    }
    let Some((pk_position, pk_auto_inc)) = primary else {
        return Err(syn::Error::new_spanned(
            ident,
            "a table needs a #[primary_key] field",
        ));
    };
    if let Some(dup) = indexes.iter().find(|i| i.field == pk_position) {
        let field = &named.named[dup.field];
        return Err(syn::Error::new_spanned(
            field,
            "the primary key is indexed already; remove #[index] from it",
        ));
    }
    Ok((pk_position, pk_auto_inc, indexes))
}

/// The schema entries of the indexes, and their accessors on the table's handle.
fn index_tokens(
    indexes: &[Index],
    fields: &[&syn::Field],
    vis: &syn::Visibility,
    ident: &syn::Ident,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let schemas = indexes.iter().map(|i| {
        let field = i.field as u16;
        let kind = match i.kind {
            Kind::Hash => quote!(Hash),
            Kind::BTree => quote!(BTree),
        };
        let (unique, auto_inc) = (i.unique, i.auto_inc);
        quote! {
            ::interstice_sdk::__private::IndexSchema {
                field: #field,
                kind: ::interstice_sdk::__private::IndexKind::#kind,
                unique: #unique,
                auto_inc: #auto_inc,
            }
        }
    });
    let accessors = indexes.iter().map(|i| {
        let f = fields[i.field];
        let fident = &f.ident;
        let fty = &f.ty;
        let position = i.field as u16;
        let marker = match (i.kind, i.unique) {
            (Kind::Hash, false) => quote!(HashIndex),
            (Kind::Hash, true) => quote!(UniqueHashIndex),
            (Kind::BTree, false) => quote!(BTreeIndex),
            (Kind::BTree, true) => quote!(UniqueBTreeIndex),
        };
        quote! {
            /// The index over this column.
            #vis fn #fident(&self) -> ::interstice_sdk::IndexHandle<#ident, #fty, ::interstice_sdk::#marker> {
                self.0.__index(#position)
            }
        }
    });
    (schemas.collect(), accessors.collect())
}

/// The table's handle type, with its index accessors, and the `ctx.db.<table>()` accessor
/// on the contexts' tables.
fn handle_tokens(
    vis: &syn::Visibility,
    ident: &syn::Ident,
    name: &str,
    index_accessors: &[TokenStream],
) -> TokenStream {
    let handle = format_ident!("{}Handle", ident);
    let access = format_ident!("__interstice_access_{}", name);
    let accessor = format_ident!("{}", name);
    quote! {
        /// Handle to the rows of this table.
        #[derive(Clone, Copy)]
        #vis struct #handle(::interstice_sdk::TableHandle<#ident>);

        impl ::std::ops::Deref for #handle {
            type Target = ::interstice_sdk::TableHandle<#ident>;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl #handle {
            #(#index_accessors)*
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis trait #access {
            /// This table's handle.
            fn #accessor(&self) -> #handle;
        }

        impl #access for ::interstice_sdk::Tables {
            fn #accessor(&self) -> #handle {
                #handle(::interstice_sdk::TableHandle::new())
            }
        }

        impl #access for ::interstice_sdk::Current {
            fn #accessor(&self) -> #handle {
                #handle(::interstice_sdk::TableHandle::new())
            }
        }
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = parse_options(attr)?;
    let mut item: ItemStruct = syn::parse2(item)?;
    let Fields::Named(named) = &mut item.fields else {
        return Err(syn::Error::new_spanned(
            &item.fields,
            "a table needs named fields, one of them marked #[primary_key]",
        ));
    };

    let (pk_position, pk_auto_inc, indexes) = parse_columns(named, &item.ident)?;

    let type_impl = struct_impl(&item)?;
    let vis = &item.vis;
    let ident = &item.ident;
    let Fields::Named(named) = &item.fields else {
        unreachable!("checked above")
    };
    let fields: Vec<&syn::Field> = named.named.iter().collect();
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| table_name(&ident.to_string()));
    let persistence = format_ident!("{}", options.persistence.map_or("Logged", |p| p.0));
    let pk_field = fields[pk_position];
    let pk_ident = &pk_field.ident;
    let pk_ty = &pk_field.ty;
    let pk_position_u16 = pk_position as u16;

    let (index_schemas, index_accessors) = index_tokens(&indexes, &fields, vis, ident);
    let handle_items = handle_tokens(vis, ident, &name, &index_accessors);
    let type_name = ident.to_string();
    let describe_export = format!("interstice_describe_table__{name}");
    let describe_fn = format_ident!("__interstice_describe_table_{}", name);
    let register_description = crate::native::register(
        &describe_export,
        quote!(Describe({
            fn describe() -> ::std::vec::Vec<u8> {
                ::interstice_sdk::__private::description_bytes(
                    &<#ident as ::interstice_sdk::TableRow>::describe(),
                )
            }
            describe
        })),
    );

    Ok(quote! {
        #item
        #type_impl

        impl ::interstice_sdk::TableRow for #ident {
            const TABLE_NAME: &'static str = #name;
            type PrimaryKey = #pk_ty;

            fn table_id() -> u32 {
                static ID: ::std::sync::atomic::AtomicU32 = ::std::sync::atomic::AtomicU32::new(u32::MAX);
                ::interstice_sdk::__private::cached_table_id(&ID, #name)
            }

            fn encode_primary_key(&self, out: &mut ::std::vec::Vec<u8>) {
                ::interstice_sdk::IntersticeType::encode(&self.#pk_ident, out);
            }

            fn describe() -> ::interstice_sdk::__private::TableDescription {
                let mut set = ::interstice_sdk::__private::interstice_abi::TypeSet::new();
                <Self as ::interstice_sdk::IntersticeType>::register_types(&mut set);
                let fields = match set.get(#type_name).map(|d| d.kind.clone()) {
                    ::std::option::Option::Some(::interstice_sdk::__private::TypeKind::Struct(fields)) => fields,
                    _ => ::std::vec::Vec::new(),
                };
                ::interstice_sdk::__private::TableDescription {
                    table: ::interstice_sdk::__private::TableSchema {
                        name: ::std::string::String::from(#name),
                        row_type: ::std::string::String::from(#type_name),
                        fields,
                        primary_key: #pk_position_u16,
                        primary_key_auto_inc: #pk_auto_inc,
                        indexes: ::std::vec![#(#index_schemas),*],
                        persistence: ::interstice_sdk::__private::Persistence::#persistence,
                    },
                    types: set.iter().cloned().collect(),
                }
            }
        }

        #handle_items

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #describe_export))]
        pub extern "C" fn #describe_fn() -> i64 {
            ::interstice_sdk::__private::describe(
                &<#ident as ::interstice_sdk::TableRow>::describe(),
            ) as i64
        }

        #register_description
    })
}
