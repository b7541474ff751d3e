//! Every limit a decoder of outside data enforces, in one place.
//!
//! Guests, peers, files on disk and people typing arguments all hand the node bytes to decode.
//! Each decoder checks these bounds *before* it allocates or recurses, so a small input can
//! neither overflow a thread's stack nor claim a large allocation. The modules that enforce
//! a limit re-export it under its old path (`codec::MAX_DEPTH`, `schema::MAX_NAME_LEN`, ...);
//! `docs/security.md` lists each one with its default and the error a caller reads.

/// Deepest nesting of containers and named types in a decoded [`Value`](crate::Value)
/// (`codec::decode_value`, arguments typed by people). Error: `DecodeError::TooDeep`.
pub const MAX_DEPTH: u32 = 64;

/// Deepest nesting of a [`ValueType`](crate::ValueType) (`Vec<Option<(…)>>`), whatever format
/// it is decoded from (postcard from a guest's describe export or a peer's `Schema` message,
/// TOML bindings, snapshots). Without it, 200 KB of `Vec(Vec(…))` overflowed the decoding
/// thread's stack and aborted the process. Error: a decode error naming this limit.
pub const MAX_TYPE_DEPTH: u32 = 32;

/// Most element types of one tuple type. Bounds the memory a short input can claim (each
/// element is at least one byte on the wire but 32 bytes in memory).
pub const MAX_TUPLE_ARITY: usize = 64;

/// Most elements all the sequences of zero-sized values (`Vec<()>`, `Vec<((), ())>`) of one
/// decoded value may claim *together*. Such elements take no input bytes, so the input's
/// length cannot bound them; a per-sequence bound alone let `Vec<Vec<()>>` turn 3 bytes per
/// inner vector into 65,536 values each. Error: `DecodeError::LengthTooLarge`.
pub const MAX_ZERO_SIZED_ELEMENTS: u64 = 1 << 16;

/// Longest name (module, table, field, reducer, query, type) a schema may use.
pub const MAX_NAME_LEN: usize = 128;

/// Most items (tables, reducers, queries, types, fields, indexes) of one kind in a schema.
pub const MAX_ITEMS: usize = 1024;

/// Longest node address a schema's node binding may give.
pub const MAX_ADDRESS_LEN: usize = 256;

/// Most vertices a drawn polygon may have.
pub const MAX_POLYGON_POINTS: usize = 4096;

/// Longest text one draw command may draw, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Most draw commands one frame may hold.
pub const MAX_COMMANDS_PER_FRAME: usize = 200_000;

/// A postcard error in words a caller can act on. postcard drops the message of an error a
/// type's own `Deserialize` raised — in this crate, only the limits above — so that case is
/// named here instead of printing "Serde Deserialization Error".
pub fn describe_postcard_error(error: &postcard::Error) -> alloc::string::String {
    use alloc::string::ToString;
    match error {
        postcard::Error::SerdeDeCustom => alloc::format!(
            "breaks a decoding limit (types at most {MAX_TYPE_DEPTH} levels deep, tuple types \
             at most {MAX_TUPLE_ARITY} elements)"
        ),
        other => other.to_string(),
    }
}
