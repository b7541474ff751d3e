//! `interstice_module!`: the module-level glue.

use interstice_abi::schema::Authority;
use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token, bracketed};

struct Options {
    visibility: Option<Ident>,
    authorities: Vec<Ident>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options {
            visibility: None,
            authorities: Vec::new(),
        };
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            match key.to_string().as_str() {
                "visibility" => {
                    let v: Ident = input.parse()?;
                    if v != "Public" && v != "Private" {
                        return Err(syn::Error::new_spanned(v, "expected `Public` or `Private`"));
                    }
                    options.visibility = Some(v);
                }
                "authorities" => {
                    let content;
                    bracketed!(content in input);
                    let list = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                    for a in list {
                        if Authority::from_name(&a.to_string()).is_none() {
                            return Err(syn::Error::new_spanned(
                                a,
                                "unknown authority: expected Gpu, Input, Audio, File or Module",
                            ));
                        }
                        if options.authorities.contains(&a) {
                            return Err(syn::Error::new_spanned(a, "authority listed twice"));
                        }
                        options.authorities.push(a);
                    }
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        key,
                        "unknown option: expected `visibility` or `authorities`",
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let options: Options = syn::parse2(input)?;
    let visibility = options
        .visibility
        .unwrap_or_else(|| Ident::new("Private", proc_macro2::Span::call_site()));
    let authorities = &options.authorities;
    let (bindings, nodes) = crate::bindings::expand()?;
    let nodes = nodes.iter().map(|n| {
        let (name, address) = (&n.name, &n.address);
        quote! {
            ::interstice_sdk::__private::NodeDependency {
                name: ::std::string::String::from(#name),
                address: ::std::string::String::from(#address),
            }
        }
    });
    let register_description = crate::native::register(
        "interstice_describe_module",
        quote!(Describe(__interstice_module_description)),
    );
    let register_version = crate::native::register(
        "interstice_abi_version",
        quote!(AbiVersion({
            fn version() -> u32 {
                ::interstice_sdk::__private::ABI_VERSION
            }
            version
        })),
    );
    Ok(quote! {
        #bindings

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = "interstice_abi_version"))]
        pub extern "C" fn __interstice_abi_version() -> u32 {
            ::interstice_sdk::__private::ABI_VERSION
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = "interstice_describe_module"))]
        pub extern "C" fn __interstice_describe_module() -> i64 {
            ::interstice_sdk::__private::leave_description(__interstice_module_description()) as i64
        }

        #[doc(hidden)]
        fn __interstice_module_description() -> ::std::vec::Vec<u8> {
            ::interstice_sdk::__private::description_bytes(&::interstice_sdk::__private::ModuleDescription {
                abi_version: ::interstice_sdk::__private::ABI_VERSION,
                name: ::std::string::String::from(env!("CARGO_PKG_NAME")),
                version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
                visibility: ::interstice_sdk::__private::Visibility::#visibility,
                authorities: ::std::vec![#(::interstice_sdk::__private::Authority::#authorities),*],
                nodes: ::std::vec![#(#nodes),*],
            })
        }

        #register_description

        #register_version

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = "interstice_buffer"))]
        pub extern "C" fn __interstice_buffer(len: u32) -> u32 {
            ::interstice_sdk::__private::args_buffer(len)
        }
    })
}
