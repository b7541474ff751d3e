//! Typed bindings: `src/bindings/*.toml` files (public module schemas, as a node exports them)
//! become Rust modules with the modules' types and one function per reducer and query, checked
//! by the compiler like any Rust call:
//!
//! - `<module>.toml` (a module on the same node) → `bindings::<module>`: reducers and queries
//!   called inside the current transaction;
//! - `node_<name>.toml` (modules on another node, with its address) → `bindings::<name>::
//!   <module>`: reducer calls sent to that node after the transaction commits, and the row
//!   types its tables' subscribers take. The node is added to the module's schema so the host
//!   knows where `<name>` is.

use interstice_abi::{
    Binding, ModuleSchema, NodeBinding, NodeDependency, TypeKind, ValueType, VariantFields,
};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::path::PathBuf;

fn ident(name: &str) -> syn::Ident {
    syn::parse_str::<syn::Ident>(name)
        .unwrap_or_else(|_| syn::Ident::new_raw(name, Span::call_site()))
}

fn rust_type(ty: &ValueType) -> TokenStream {
    match ty {
        ValueType::Unit => quote!(()),
        ValueType::Bool => quote!(bool),
        ValueType::U8 => quote!(u8),
        ValueType::U16 => quote!(u16),
        ValueType::U32 => quote!(u32),
        ValueType::U64 => quote!(u64),
        ValueType::I8 => quote!(i8),
        ValueType::I16 => quote!(i16),
        ValueType::I32 => quote!(i32),
        ValueType::I64 => quote!(i64),
        ValueType::F32 => quote!(f32),
        ValueType::F64 => quote!(f64),
        ValueType::String => quote!(::std::string::String),
        ValueType::Vec(t) => {
            let t = rust_type(t);
            quote!(::std::vec::Vec<#t>)
        }
        ValueType::Option(t) => {
            let t = rust_type(t);
            quote!(::std::option::Option<#t>)
        }
        ValueType::Tuple(ts) => {
            let ts = ts.iter().map(rust_type);
            quote!((#(#ts,)*))
        }
        ValueType::Named(n) => {
            let n = ident(n);
            quote!(#n)
        }
    }
}

fn binding_module(schema: &ModuleSchema, node: Option<&NodeDependency>) -> TokenStream {
    let module_name = &schema.name;
    let module_ident = ident(&schema.name.replace('-', "_"));
    let types = schema.types.iter().map(|def| {
        let name = ident(&def.name);
        match &def.kind {
            TypeKind::Struct(fields) => {
                let fields = fields.iter().map(|f| {
                    let (n, t) = (ident(&f.name), rust_type(&f.ty));
                    quote!(pub #n: #t)
                });
                quote! {
                    #[::interstice_sdk::interstice_type]
                    #[derive(Debug, Clone, PartialEq)]
                    pub struct #name { #(#fields),* }
                }
            }
            TypeKind::Enum(variants) => {
                let variants = variants.iter().map(|v| {
                    let vn = ident(&v.name);
                    match &v.fields {
                        VariantFields::Unit => quote!(#vn),
                        VariantFields::Tuple(ts) => {
                            let ts = ts.iter().map(rust_type);
                            quote!(#vn(#(#ts),*))
                        }
                        VariantFields::Named(fs) => {
                            let fs = fs.iter().map(|f| {
                                let (n, t) = (ident(&f.name), rust_type(&f.ty));
                                quote!(#n: #t)
                            });
                            quote!(#vn { #(#fs),* })
                        }
                    }
                });
                quote! {
                    #[::interstice_sdk::interstice_type]
                    #[derive(Debug, Clone, PartialEq)]
                    pub enum #name { #(#variants),* }
                }
            }
        }
    });
    let reducers = schema.reducers.iter().map(|r| {
        let f = ident(&r.name);
        let name = &r.name;
        let params = r.args.iter().map(|a| {
            let (n, t) = (ident(&a.name), rust_type(&a.ty));
            quote!(#n: #t)
        });
        let args = r.args.iter().map(|a| ident(&a.name));
        match node {
            None => {
                let doc = format!("Calls `{module_name}.{name}` inside the current transaction.");
                quote! {
                    #[doc = #doc]
                    pub fn #f(ctx: &::interstice_sdk::ReducerContext, #(#params),*) -> ::std::result::Result<(), ::interstice_sdk::HostError> {
                        ctx.call_reducer(MODULE, #name, (#(#args,)*))
                    }
                }
            }
            Some(n) => {
                let doc = format!(
                    "Sends a call of `{module_name}.{name}` to the node `{}` ({}) once this transaction commits; never waits for it.",
                    n.name, n.address
                );
                quote! {
                    #[doc = #doc]
                    pub fn #f(ctx: &::interstice_sdk::ReducerContext, #(#params),*) -> ::std::result::Result<(), ::interstice_sdk::HostError> {
                        ctx.call_remote_reducer(super::NODE, MODULE, #name, (#(#args,)*))
                    }
                }
            }
        }
    });
    // Remote data is read through subscriptions, never by waiting on the network.
    let queries = schema.queries.iter().filter(|_| node.is_none()).map(|q| {
        let f = ident(&q.name);
        let name = &q.name;
        let params = q.args.iter().map(|a| {
            let (n, t) = (ident(&a.name), rust_type(&a.ty));
            quote!(#n: #t)
        });
        let args = q.args.iter().map(|a| ident(&a.name));
        let ret = rust_type(&q.returns);
        let doc = format!("Runs the query `{module_name}.{name}`.");
        quote! {
            #[doc = #doc]
            pub fn #f(ctx: &impl ::interstice_sdk::QueryCaller, #(#params),*) -> ::std::result::Result<#ret, ::interstice_sdk::HostError> {
                ctx.call_query(MODULE, #name, (#(#args,)*))
            }
        }
    });
    let doc = match node {
        None => format!("Typed access to the module `{module_name}` on this node."),
        Some(n) => format!(
            "The module `{module_name}` on the node `{}` ({}): its types, and reducer calls sent there.",
            n.name, n.address
        ),
    };
    quote! {
        #[doc = #doc]
        #[allow(dead_code, clippy::too_many_arguments)]
        pub mod #module_ident {
            use super::*;
            /// The module's name.
            pub const MODULE: &str = #module_name;
            #(#types)*
            #(#reducers)*
            #(#queries)*
        }
    }
}

fn read_binding<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> syn::Result<T> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        syn::Error::new(
            Span::call_site(),
            format!("cannot read binding {shown}: {e}"),
        )
    })?;
    toml::from_str(&text)
        .map_err(|e| syn::Error::new(Span::call_site(), format!("invalid binding {shown}: {e}")))
}

fn validated(schema: &ModuleSchema, path: &std::path::Path) -> syn::Result<()> {
    schema.validate().map_err(|e| {
        syn::Error::new(
            Span::call_site(),
            format!("invalid binding {}: {e}", path.display()),
        )
    })
}

/// The `bindings` module for the crate being compiled (nothing when it has no
/// `src/bindings/`), and the nodes its node bindings declare.
pub fn expand() -> syn::Result<(TokenStream, Vec<NodeDependency>)> {
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return Ok((TokenStream::new(), Vec::new()));
    };
    let dir = PathBuf::from(manifest_dir).join("src").join("bindings");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok((TokenStream::new(), Vec::new()));
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut modules = Vec::new();
    let mut tracked = Vec::new();
    let mut nodes = Vec::new();
    for path in files {
        let is_node = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("node_"));
        if is_node {
            let binding: NodeBinding = read_binding(&path)?;
            let node = &binding.node;
            if nodes.iter().any(|n: &NodeDependency| n.name == node.name) {
                return Err(syn::Error::new(
                    Span::call_site(),
                    format!("node `{}` is declared by two bindings", node.name),
                ));
            }
            let mut inner = Vec::new();
            for module in &binding.modules {
                validated(module, &path)?;
                inner.push(binding_module(module, Some(node)));
            }
            let node_ident = ident(&node.name);
            let (name, address) = (&node.name, &node.address);
            let doc = format!("The node `{name}` at {address}.");
            modules.push(quote! {
                #[doc = #doc]
                pub mod #node_ident {
                    /// The node's name, as event strings and calls use it.
                    pub const NODE: &str = #name;
                    /// Its address.
                    pub const ADDRESS: &str = #address;
                    #(#inner)*
                }
            });
            nodes.push(node.clone());
        } else {
            let binding: Binding = read_binding(&path)?;
            validated(&binding.module, &path)?;
            modules.push(binding_module(&binding.module, None));
        }
        // Makes the crate (and so this macro) rebuild when the file changes.
        let shown = path.display().to_string();
        tracked.push(quote!(
            const _: &str = include_str!(#shown);
        ));
    }
    Ok((
        quote! {
            /// Typed access to the modules described in `src/bindings/`.
            pub mod bindings {
                #(#tracked)*
                #(#modules)*
            }
        },
        nodes,
    ))
}
