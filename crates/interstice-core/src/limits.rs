//! Every fixed limit of the engine, in one place: what a guest, a call or a stream may use at
//! most. Each is defined beside the code that enforces it; `docs/security.md` lists them all,
//! with the error a caller sees. Limits a node owner can change are settings instead
//! ([`EngineConfig`](crate::EngineConfig), [`Quotas`](crate::Quotas),
//! [`StorageConfig`](crate::StorageConfig)).

pub use crate::db::journal::MAX_RECORD_LEN;
pub use crate::publish::{RETAINED_BYTES, RETAINED_EVENTS};
pub use crate::runtime::MAX_CALL_DEPTH;
pub use crate::storage::history::MAX_VERSIONS_PER_READ;
pub use crate::wasm::files::{MAX_FILE_BYTES, MAX_PATH_LEN, MAX_PENDING as MAX_PENDING_FILES};
pub use crate::wasm::host_calls::MAX_PAYLOAD;
pub use crate::wasm::instance::MAX_GUEST_RESULT;
pub use crate::wasm::meter::{FUEL_PER_BYTE, FUEL_PER_ROW, SETTLE_AT};
pub use crate::wasm::present::MAX_PENDING_SAMPLES;
pub use crate::wasm::state::{MAX_MESSAGE_LEN, MAX_PENDING_LOGS, MAX_REMOTE_ARGS};
