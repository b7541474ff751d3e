//! Native registration: compiled for the host (a module's own tests), every export is also
//! listed in `interstice_abi::native`, where the engine finds it without a wasm export table.

use proc_macro2::TokenStream;
use quote::quote;

/// Registers the export named `name` (its wasm name) as doing `call` (a
/// `NativeCall` expression), for native builds only.
pub fn register(name: &str, call: TokenStream) -> TokenStream {
    quote! {
        #[cfg(not(target_arch = "wasm32"))]
        ::interstice_sdk::__private::inventory::submit! {
            ::interstice_sdk::__private::NativeExport {
                module: env!("CARGO_PKG_NAME"),
                name: #name,
                call: ::interstice_sdk::__private::NativeCall::#call,
            }
        }
    }
}
