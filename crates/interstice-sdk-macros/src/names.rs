//! Names and type checks shared by the macros.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, PathArguments, Type};

/// Integer types `auto_inc` accepts.
const INTEGERS: [&str; 8] = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];
/// Types that work as they are.
const PRIMITIVES: [&str; 11] = [
    "bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64",
];

/// The last path segment's name, for a plain path type.
pub fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(g) => last_ident(&g.elem),
        Type::Paren(p) => last_ident(&p.elem),
        _ => None,
    }
}

/// Whether `ty` is one of the integer types.
pub fn is_integer(ty: &Type) -> bool {
    last_ident(ty).is_some_and(|n| INTEGERS.contains(&n.as_str()))
}

fn single_generic(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(t)) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

/// Checks that `ty` can be stored: errors for types Interstice cannot encode, and returns an
/// assertion (placed at the type's span) that user-defined types implement `IntersticeType`.
pub fn check_supported(ty: &Type) -> syn::Result<TokenStream> {
    let unsupported = |why: &str| {
        Err(syn::Error::new(
            ty.span(),
            format!(
                "unsupported type `{}` in an Interstice type: {why}",
                quote!(#ty).to_string().replace(' ', "")
            ),
        ))
    };
    match ty {
        Type::Tuple(t) => {
            let mut out = TokenStream::new();
            for elem in &t.elems {
                out.extend(check_supported(elem)?);
            }
            Ok(out)
        }
        Type::Group(g) => check_supported(&g.elem),
        Type::Paren(p) => check_supported(&p.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(seg) = p.path.segments.last() else {
                return unsupported("empty path");
            };
            let name = seg.ident.to_string();
            match name.as_str() {
                n if PRIMITIVES.contains(&n) || n == "String" => Ok(TokenStream::new()),
                "Vec" | "Option" | "Box" => match single_generic(ty) {
                    Some(inner) => check_supported(inner),
                    None => unsupported("expected one type argument"),
                },
                "usize" | "isize" => {
                    unsupported("its size depends on the platform; use u32/u64 or i32/i64")
                }
                "u128" | "i128" => unsupported("use u64 or i64"),
                "char" => unsupported("use String or u32"),
                "str" => unsupported("use String"),
                "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" | "VecDeque" | "Rc" | "Arc"
                | "Cell" | "RefCell" => {
                    unsupported("use Vec, Option, tuples or #[interstice_type] types")
                }
                _ if !matches!(seg.arguments, PathArguments::None) => {
                    unsupported("generic types other than Vec, Option and Box are not supported")
                }
                _ => Ok(quote_spanned! {ty.span()=>
                    const _: () = {
                        fn __interstice_assert_type<T: ::interstice_sdk::IntersticeType>() {}
                        fn __interstice_check() { __interstice_assert_type::<#ty>(); }
                    };
                }),
            }
        }
        Type::Reference(_) => unsupported("references cannot be stored; use an owned type"),
        Type::Array(_) | Type::Slice(_) => unsupported("use Vec<T>"),
        _ => unsupported("only paths, tuples, Vec, Option and Box are supported"),
    }
}

/// `MyTable` → `mytable`: the seed's table naming (`ctx.current.tables.mytable()`).
pub fn table_name(struct_name: &str) -> String {
    struct_name.to_lowercase()
}
