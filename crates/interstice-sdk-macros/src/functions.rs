//! `#[reducer]` and `#[query]`: entry points, argument decoding and descriptions.

use crate::names::{check_supported, last_ident};
use interstice_abi::schema::{EventSpec, TableEvent};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Meta, Pat, ReturnType, Token, Type};

struct Arg<'a> {
    ident: &'a syn::Ident,
    ty: &'a Type,
}

/// Checks the signature shape shared by reducers and queries and returns the arguments after
/// the context.
fn signature<'a>(f: &'a ItemFn, context: &str, what: &str) -> syn::Result<Vec<Arg<'a>>> {
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            a,
            format!("{what}s cannot be async"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("{what}s cannot be generic"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    let first_is_context = match inputs.next() {
        Some(FnArg::Typed(pt)) => last_ident(&pt.ty).as_deref() == Some(context),
        _ => false,
    };
    if !first_is_context {
        let span = sig.inputs.first().map_or(sig.ident.span(), |a| a.span());
        return Err(syn::Error::new(
            span,
            format!(
                "the first argument of a {what} must be a `{context}`: `fn {}(ctx: {context}, ...)`",
                sig.ident
            ),
        ));
    }
    let mut args = Vec::new();
    for input in inputs {
        let FnArg::Typed(pt) = input else {
            return Err(syn::Error::new_spanned(input, "unexpected receiver"));
        };
        let Pat::Ident(pi) = pt.pat.as_ref() else {
            return Err(syn::Error::new_spanned(
                &pt.pat,
                format!("{what} arguments must be plain names: `name: Type`"),
            ));
        };
        args.push(Arg {
            ident: &pi.ident,
            ty: &pt.ty,
        });
    }
    Ok(args)
}

fn parse_on(attr: TokenStream) -> syn::Result<Option<(String, EventSpec, proc_macro2::Span)>> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut on = None;
    for meta in metas {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("on") => {
                let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                else {
                    return Err(syn::Error::new_spanned(
                        &nv.value,
                        "expected a string: on = \"init\"",
                    ));
                };
                let text = s.value();
                let spec = EventSpec::parse(&text).map_err(|e| syn::Error::new(s.span(), e))?;
                on = Some((text, spec, s.span()));
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "unknown reducer option: expected on = \"<event>\"",
                ));
            }
        }
    }
    Ok(on)
}

/// Checks a subscriber's arguments against what its event delivers.
fn check_event_args(
    spec: &EventSpec,
    text: &str,
    args: &[Arg<'_>],
    span: proc_macro2::Span,
) -> syn::Result<()> {
    let fail = |expected: &str| {
        Err(syn::Error::new(
            span,
            format!("a reducer on \"{text}\" must have the signature {expected}"),
        ))
    };
    match spec {
        EventSpec::Init | EventSpec::Load if !args.is_empty() => {
            fail("`fn x(ctx: ReducerContext)`")
        }
        EventSpec::Connect | EventSpec::Disconnect => {
            if args.len() == 1 && last_ident(args[0].ty).as_deref() == Some("String") {
                Ok(())
            } else {
                fail("`fn x(ctx: ReducerContext, node_id: String)`")
            }
        }
        EventSpec::Table { event, .. } => {
            let expected = match event {
                TableEvent::Insert => (1, "`fn x(ctx: ReducerContext, inserted: Row)`"),
                TableEvent::Delete => (1, "`fn x(ctx: ReducerContext, deleted: Row)`"),
                TableEvent::Update => (2, "`fn x(ctx: ReducerContext, old: Row, new: Row)`"),
            };
            if args.len() == expected.0 {
                Ok(())
            } else {
                fail(expected.1)
            }
        }
        _ => Ok(()),
    }
}

/// What the arguments after the context turn into.
struct ArgParts {
    /// Type assertions placed at each argument's type.
    checks: TokenStream,
    /// `FieldDef` expressions.
    defs: Vec<TokenStream>,
    /// `let name: Ty = decode(r)?;` statements.
    decodes: Vec<TokenStream>,
    /// Registrations of the named types the arguments use.
    registers: Vec<TokenStream>,
}

fn arg_parts(args: &[Arg<'_>]) -> syn::Result<ArgParts> {
    let mut checks = TokenStream::new();
    let mut defs = Vec::new();
    let mut decodes = Vec::new();
    let mut registers = Vec::new();
    for a in args {
        checks.extend(check_supported(a.ty)?);
        let (ident, ty) = (a.ident, a.ty);
        let name = ident.to_string();
        defs.push(quote! {
            ::interstice_sdk::__private::FieldDef {
                name: ::std::string::String::from(#name),
                ty: <#ty as ::interstice_sdk::IntersticeType>::value_type(),
            }
        });
        decodes.push(quote! {
            let #ident: #ty = ::interstice_sdk::__private::arg(r)?;
        });
        registers.push(quote! {
            <#ty as ::interstice_sdk::IntersticeType>::register_types(&mut set);
        });
    }
    Ok(ArgParts {
        checks,
        defs,
        decodes,
        registers,
    })
}

pub fn expand_reducer(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let on = parse_on(attr)?;
    let f: ItemFn = syn::parse2(item)?;
    let args = signature(&f, "ReducerContext", "reducer")?;
    if let Some((text, spec, span)) = &on {
        check_event_args(spec, text, &args, *span)?;
    }
    let ArgParts {
        checks,
        defs,
        decodes,
        registers,
    } = arg_parts(&args)?;
    let ident = &f.sig.ident;
    let name = ident.to_string();
    let arg_idents: Vec<_> = args.iter().map(|a| a.ident).collect();
    let on_expr = match &on {
        Some((text, _, _)) => quote! {
            ::interstice_sdk::__private::EventSpec::parse(#text).ok()
        },
        None => quote!(::std::option::Option::None),
    };
    let entry_export = format!("interstice_reducer__{name}");
    let entry_fn = format_ident!("__interstice_reducer_{}", name);
    let describe_export = format!("interstice_describe_reducer__{name}");
    let describe_fn = format_ident!("__interstice_describe_reducer_{}", name);
    let body_fn = format_ident!("__interstice_body_reducer_{}", name);
    let description_fn = format_ident!("__interstice_description_reducer_{}", name);
    let register_entry = crate::native::register(
        &entry_export,
        quote!(Entry({
            fn run(args: &[u8]) -> ::interstice_sdk::__private::NativeOutcome {
                ::interstice_sdk::__private::native_reducer(args, #body_fn)
            }
            run
        })),
    );
    let register_description =
        crate::native::register(&describe_export, quote!(Describe(#description_fn)));
    Ok(quote! {
        #f
        #checks

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #entry_export))]
        pub extern "C" fn #entry_fn(ptr: u32, len: u32) -> i64 {
            // SAFETY: the host passes the arguments it wrote into `interstice_buffer`.
            unsafe { ::interstice_sdk::__private::run_reducer(ptr, len, #body_fn) }
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        fn #body_fn(
            r: &mut ::interstice_sdk::__private::interstice_abi::Reader<'_>,
        ) -> ::std::result::Result<
            ::std::result::Result<(), ::std::string::String>,
            ::interstice_sdk::__private::interstice_abi::DecodeError,
        > {
            #(#decodes)*
            ::interstice_sdk::__private::end_args(r)?;
            ::std::result::Result::Ok(::interstice_sdk::__private::ReducerReturn::into_outcome(
                #ident(::interstice_sdk::ReducerContext::__new(), #(#arg_idents),*),
            ))
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #describe_export))]
        pub extern "C" fn #describe_fn() -> i64 {
            ::interstice_sdk::__private::leave_description(#description_fn()) as i64
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        fn #description_fn() -> ::std::vec::Vec<u8> {
            let mut set = ::interstice_sdk::__private::interstice_abi::TypeSet::new();
            #(#registers)*
            ::interstice_sdk::__private::description_bytes(&::interstice_sdk::__private::ReducerDescription {
                reducer: ::interstice_sdk::__private::ReducerSchema {
                    name: ::std::string::String::from(#name),
                    args: ::std::vec![#(#defs),*],
                    on: #on_expr,
                },
                types: set.iter().cloned().collect(),
            })
        }

        #register_entry

        #register_description
    })
}

pub fn expand_query(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[query] takes no arguments: queries cannot subscribe to events",
        ));
    }
    let f: ItemFn = syn::parse2(item)?;
    let args = signature(&f, "QueryContext", "query")?;
    let ReturnType::Type(_, ret) = &f.sig.output else {
        return Err(syn::Error::new_spanned(
            &f.sig,
            "a query must return a value: `fn q(ctx: QueryContext) -> T`",
        ));
    };
    let ArgParts {
        mut checks,
        defs,
        decodes,
        registers,
    } = arg_parts(&args)?;
    checks.extend(check_supported(ret)?);
    let ident = &f.sig.ident;
    let name = ident.to_string();
    let arg_idents: Vec<_> = args.iter().map(|a| a.ident).collect();
    let entry_export = format!("interstice_query__{name}");
    let entry_fn = format_ident!("__interstice_query_{}", name);
    let describe_export = format!("interstice_describe_query__{name}");
    let describe_fn = format_ident!("__interstice_describe_query_{}", name);
    let body_fn = format_ident!("__interstice_body_query_{}", name);
    let description_fn = format_ident!("__interstice_description_query_{}", name);
    let register_entry = crate::native::register(
        &entry_export,
        quote!(Entry({
            fn run(args: &[u8]) -> ::interstice_sdk::__private::NativeOutcome {
                ::interstice_sdk::__private::native_query::<#ret>(args, #body_fn)
            }
            run
        })),
    );
    let register_description =
        crate::native::register(&describe_export, quote!(Describe(#description_fn)));
    Ok(quote! {
        #f
        #checks

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #entry_export))]
        pub extern "C" fn #entry_fn(ptr: u32, len: u32) -> i64 {
            // SAFETY: the host passes the arguments it wrote into `interstice_buffer`.
            unsafe { ::interstice_sdk::__private::run_query::<#ret>(ptr, len, #body_fn) }
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        fn #body_fn(
            r: &mut ::interstice_sdk::__private::interstice_abi::Reader<'_>,
        ) -> ::std::result::Result<#ret, ::interstice_sdk::__private::interstice_abi::DecodeError> {
            #(#decodes)*
            ::interstice_sdk::__private::end_args(r)?;
            ::std::result::Result::Ok(#ident(::interstice_sdk::QueryContext::__new(), #(#arg_idents),*))
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #describe_export))]
        pub extern "C" fn #describe_fn() -> i64 {
            ::interstice_sdk::__private::leave_description(#description_fn()) as i64
        }

        #[doc(hidden)]
        #[allow(dead_code)]
        fn #description_fn() -> ::std::vec::Vec<u8> {
            let mut set = ::interstice_sdk::__private::interstice_abi::TypeSet::new();
            #(#registers)*
            <#ret as ::interstice_sdk::IntersticeType>::register_types(&mut set);
            ::interstice_sdk::__private::description_bytes(&::interstice_sdk::__private::QueryDescription {
                query: ::interstice_sdk::__private::QuerySchema {
                    name: ::std::string::String::from(#name),
                    args: ::std::vec![#(#defs),*],
                    returns: <#ret as ::interstice_sdk::IntersticeType>::value_type(),
                },
                types: set.iter().cloned().collect(),
            })
        }

        #register_entry

        #register_description
    })
}
