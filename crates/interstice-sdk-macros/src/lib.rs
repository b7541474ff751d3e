//! Procedural macros of the Interstice SDK. Use them through `interstice_sdk`, which re-exports
//! them; the generated code refers to `::interstice_sdk`.
//!
//! Every macro checks what it can at compile time and reports mistakes at the offending span:
//! a table without a primary key, `auto_inc` on a non-integer, a reducer whose first argument is
//! not a `ReducerContext`, an event subscriber with the wrong arguments, an unsupported type.

mod bindings;
mod functions;
mod module;
mod names;
mod native;
mod table;
mod types;

use proc_macro::TokenStream;

/// Declares the module's glue: ABI version, description, argument buffer. Call it once, at the
/// top of `lib.rs`:
///
/// ```ignore
/// interstice_module!();
/// interstice_module!(visibility: Public, authorities: [Gpu, Input]);
/// ```
///
/// The module's name and version are the crate's (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`).
#[proc_macro]
pub fn interstice_module(input: TokenStream) -> TokenStream {
    module::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a table whose rows are this struct. Options: `stateful`, `ephemeral` (default:
/// logged), `name = "..."` (default: the struct name in lower case). Field attributes:
/// `#[primary_key]`, `#[primary_key(auto_inc)]`, `#[index(hash)]`, `#[index(hash, unique)]`,
/// `#[index(btree)]`, `#[index(btree, unique)]`, and `auto_inc` on integer indexes.
#[proc_macro_attribute]
pub fn table(attr: TokenStream, item: TokenStream) -> TokenStream {
    table::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a struct or enum usable in tables, arguments and query results.
#[proc_macro_attribute]
pub fn interstice_type(attr: TokenStream, item: TokenStream) -> TokenStream {
    types::expand_attribute(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a reducer: `#[reducer]`, or a subscriber `#[reducer(on = "init")]` (also `load`,
/// `connect`, `disconnect`, `<module>.<table>.<insert|update|delete>`, ...). The first argument
/// must be a `ReducerContext`; it may return `()` or `Result<(), E: Display>`.
#[proc_macro_attribute]
pub fn reducer(attr: TokenStream, item: TokenStream) -> TokenStream {
    functions::expand_reducer(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a query: a read-only function whose first argument is a `QueryContext` and which
/// returns a value.
#[proc_macro_attribute]
pub fn query(attr: TokenStream, item: TokenStream) -> TokenStream {
    functions::expand_query(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
