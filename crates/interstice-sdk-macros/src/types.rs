//! `#[interstice_type]`: the `IntersticeType` implementation of structs and enums.

use crate::names::check_supported;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Fields, Item, ItemEnum, ItemStruct};

pub fn expand_attribute(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[interstice_type] takes no arguments",
        ));
    }
    let item: Item = syn::parse2(item)?;
    let implementation = match &item {
        Item::Struct(s) => struct_impl(s)?,
        Item::Enum(e) => enum_impl(e)?,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[interstice_type] applies to structs and enums",
            ));
        }
    };
    Ok(quote! { #item #implementation })
}

fn no_generics(generics: &syn::Generics) -> syn::Result<()> {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            generics,
            "Interstice types cannot be generic",
        ))
    }
}

/// `FieldDef { name, ty }` expressions for named fields.
fn field_defs<'a>(fields: impl Iterator<Item = &'a syn::Field>) -> Vec<TokenStream> {
    fields
        .map(|f| {
            let name = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
            let ty = &f.ty;
            quote! {
                ::interstice_sdk::__private::FieldDef {
                    name: ::std::string::String::from(#name),
                    ty: <#ty as ::interstice_sdk::IntersticeType>::value_type(),
                }
            }
        })
        .collect()
}

pub fn struct_impl(s: &ItemStruct) -> syn::Result<TokenStream> {
    no_generics(&s.generics)?;
    let ident = &s.ident;
    let name = ident.to_string();
    let Fields::Named(named) = &s.fields else {
        return Err(syn::Error::new_spanned(
            &s.fields,
            "Interstice structs need named fields: `struct S { a: u32 }`",
        ));
    };
    let mut checks = TokenStream::new();
    for f in &named.named {
        checks.extend(check_supported(&f.ty)?);
    }
    let defs = field_defs(named.named.iter());
    let tys: Vec<_> = named.named.iter().map(|f| &f.ty).collect();
    let idents: Vec<_> = named.named.iter().map(|f| &f.ident).collect();
    Ok(quote! {
        #checks
        impl ::interstice_sdk::IntersticeType for #ident {
            fn value_type() -> ::interstice_sdk::__private::ValueType {
                ::interstice_sdk::__private::ValueType::Named(::std::string::String::from(#name))
            }
            fn register_types(types: &mut ::interstice_sdk::__private::interstice_abi::TypeSet) {
                if types.contains(#name) {
                    return;
                }
                let _ = types.insert(::interstice_sdk::__private::TypeDef {
                    name: ::std::string::String::from(#name),
                    kind: ::interstice_sdk::__private::TypeKind::Struct(::std::vec![#(#defs),*]),
                });
                #(<#tys as ::interstice_sdk::IntersticeType>::register_types(types);)*
            }
            #[inline]
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                #(::interstice_sdk::IntersticeType::encode(&self.#idents, out);)*
            }
            #[inline]
            fn decode(
                r: &mut ::interstice_sdk::__private::interstice_abi::Reader<'_>,
            ) -> ::std::result::Result<Self, ::interstice_sdk::__private::interstice_abi::DecodeError> {
                r.enter()?;
                let value = #ident {
                    #(#idents: <#tys as ::interstice_sdk::IntersticeType>::decode(r)?,)*
                };
                r.leave();
                ::std::result::Result::Ok(value)
            }
        }
    })
}

fn enum_impl(e: &ItemEnum) -> syn::Result<TokenStream> {
    no_generics(&e.generics)?;
    let ident = &e.ident;
    let name = ident.to_string();
    let mut checks = TokenStream::new();
    let mut variant_defs = Vec::new();
    let mut encode_arms = Vec::new();
    let mut decode_arms = Vec::new();
    let mut all_tys = Vec::new();
    for (index, v) in e.variants.iter().enumerate() {
        let vident = &v.ident;
        let vname = vident.to_string();
        let index = index as u32;
        for f in v.fields.iter() {
            checks.extend(check_supported(&f.ty)?);
            all_tys.push(f.ty.clone());
        }
        let tys: Vec<_> = v.fields.iter().map(|f| &f.ty).collect();
        match &v.fields {
            Fields::Unit => {
                variant_defs.push(quote! {
                    ::interstice_sdk::__private::VariantDef {
                        name: ::std::string::String::from(#vname),
                        fields: ::interstice_sdk::__private::VariantFields::Unit,
                    }
                });
                encode_arms.push(quote! {
                    #ident::#vident => ::interstice_sdk::__private::interstice_abi::codec::write_varint(out, #index as u64),
                });
                decode_arms.push(quote! { #index => #ident::#vident, });
            }
            Fields::Unnamed(_) => {
                let binds: Vec<_> = (0..tys.len()).map(|i| format_ident!("f{i}")).collect();
                variant_defs.push(quote! {
                    ::interstice_sdk::__private::VariantDef {
                        name: ::std::string::String::from(#vname),
                        fields: ::interstice_sdk::__private::VariantFields::Tuple(::std::vec![
                            #(<#tys as ::interstice_sdk::IntersticeType>::value_type()),*
                        ]),
                    }
                });
                encode_arms.push(quote! {
                    #ident::#vident(#(#binds),*) => {
                        ::interstice_sdk::__private::interstice_abi::codec::write_varint(out, #index as u64);
                        #(::interstice_sdk::IntersticeType::encode(#binds, out);)*
                    }
                });
                decode_arms.push(quote! {
                    #index => #ident::#vident(#(<#tys as ::interstice_sdk::IntersticeType>::decode(r)?),*),
                });
            }
            Fields::Named(named) => {
                let defs = field_defs(named.named.iter());
                let idents: Vec<_> = named.named.iter().map(|f| &f.ident).collect();
                variant_defs.push(quote! {
                    ::interstice_sdk::__private::VariantDef {
                        name: ::std::string::String::from(#vname),
                        fields: ::interstice_sdk::__private::VariantFields::Named(::std::vec![#(#defs),*]),
                    }
                });
                encode_arms.push(quote! {
                    #ident::#vident { #(#idents),* } => {
                        ::interstice_sdk::__private::interstice_abi::codec::write_varint(out, #index as u64);
                        #(::interstice_sdk::IntersticeType::encode(#idents, out);)*
                    }
                });
                decode_arms.push(quote! {
                    #index => #ident::#vident {
                        #(#idents: <#tys as ::interstice_sdk::IntersticeType>::decode(r)?,)*
                    },
                });
            }
        }
    }
    let encode_body = if encode_arms.is_empty() {
        quote! { match *self {} }
    } else {
        quote! { match self { #(#encode_arms)* } }
    };
    Ok(quote! {
        #checks
        impl ::interstice_sdk::IntersticeType for #ident {
            fn value_type() -> ::interstice_sdk::__private::ValueType {
                ::interstice_sdk::__private::ValueType::Named(::std::string::String::from(#name))
            }
            fn register_types(types: &mut ::interstice_sdk::__private::interstice_abi::TypeSet) {
                if types.contains(#name) {
                    return;
                }
                let _ = types.insert(::interstice_sdk::__private::TypeDef {
                    name: ::std::string::String::from(#name),
                    kind: ::interstice_sdk::__private::TypeKind::Enum(::std::vec![#(#variant_defs),*]),
                });
                #(<#all_tys as ::interstice_sdk::IntersticeType>::register_types(types);)*
            }
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                #encode_body
            }
            fn decode(
                r: &mut ::interstice_sdk::__private::interstice_abi::Reader<'_>,
            ) -> ::std::result::Result<Self, ::interstice_sdk::__private::interstice_abi::DecodeError> {
                r.enter()?;
                let variant = r.varint(32)? as u32;
                let value = match variant {
                    #(#decode_arms)*
                    other => {
                        return ::std::result::Result::Err(
                            ::interstice_sdk::__private::interstice_abi::DecodeError::InvalidVariant {
                                enum_name: ::std::string::String::from(#name),
                                variant: other,
                            },
                        );
                    }
                };
                r.leave();
                ::std::result::Result::Ok(value)
            }
        }
    })
}
