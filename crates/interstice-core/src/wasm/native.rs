//! The host side of a module loaded natively ([`Modules::load_native`]): its host calls reach
//! the same functions a wasm module's imports do, with the same answers.
//!
//! What needs a wasm store is refused with an error the module can read: calls to other
//! modules, files, drawing, audio and input. Nothing is metered (there is no fuel to charge).
//!
//! [`Modules::load_native`]: crate::Modules::load_native

use super::host_calls::{
    MAX_PAYLOAD, answer_error, caller_name, cancel_schedule, log_line, native_table_op,
    panic_message, resolve_table, schedule_call,
};
use super::state::HostState;
use interstice_abi::HostError;
use interstice_abi::native::NativeHost;

/// What a natively loaded module is told when it asks for what only wasm modules have.
fn wasm_only(state: &mut HostState, what: &str) -> i64 {
    let error = HostError::NotPermitted(format!(
        "{what} is not available to a module loaded natively (a native test): test it on a node"
    ));
    answer_error(state, &error)
}

/// Whether `payload` is within [`MAX_PAYLOAD`]; if not, the call is to end as the trap that
/// would end a wasm module's, and the host call answers an error meanwhile.
fn within_bounds(state: &mut HostState, payload: &[u8]) -> Result<(), i64> {
    if payload.len() <= MAX_PAYLOAD {
        return Ok(());
    }
    let message = format!(
        "host call payload of {} bytes exceeds {MAX_PAYLOAD}",
        payload.len()
    );
    let answer = answer_error(state, &HostError::InvalidPayload(message.clone()));
    state.native_trap.get_or_insert(message);
    Err(answer)
}

impl NativeHost for HostState {
    fn log(&mut self, level: u32, message: &[u8]) {
        if within_bounds(self, message).is_ok() {
            log_line(self, level, message);
        }
    }

    fn panic(&mut self, message: &[u8]) {
        panic_message(self, message);
    }

    fn resolve_table(&mut self, name: &[u8]) -> i32 {
        resolve_table(self, name)
    }

    fn table_op(&mut self, op: u32, table: u32, field: u32, payload: &[u8]) -> i64 {
        if let Err(answer) = within_bounds(self, payload) {
            return answer;
        }
        native_table_op(self, op, table, field, payload)
    }

    fn take_response(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.response)
    }

    fn schedule(&mut self, payload: &[u8]) -> i64 {
        if let Err(answer) = within_bounds(self, payload) {
            return answer;
        }
        schedule_call(self, payload)
    }

    fn cancel_schedule(&mut self, id: u64) -> i32 {
        cancel_schedule(self, id)
    }

    fn now(&mut self) -> i64 {
        self.now_ms as i64
    }

    fn random_seed(&mut self) -> i64 {
        self.random_seed as i64
    }

    fn call_module(&mut self, kind: u32, payload: &[u8]) -> i64 {
        if let Err(answer) = within_bounds(self, payload) {
            return answer;
        }
        // A call to another node is only queued until the transaction commits: that works
        // without a wasm store (`Modules::take_remote_calls` then has it).
        if kind == interstice_abi::protocol::CallKind::RemoteReducer.code() {
            self.response.clear();
            return match super::remote::queue_remote_call(self, payload) {
                Ok(()) => 0,
                Err(error) => answer_error(self, &error),
            };
        }
        wasm_only(self, "calling another module")
    }

    fn caller(&mut self) -> i64 {
        caller_name(self, false)
    }

    fn caller_node(&mut self) -> i64 {
        caller_name(self, true)
    }

    fn file_op(&mut self, _op: u32, _payload: &[u8]) -> i64 {
        wasm_only(self, "the File authority")
    }

    fn gpu_submit(&mut self, _payload: &[u8]) -> i64 {
        wasm_only(self, "the Gpu authority")
    }

    fn audio_write(&mut self, _payload: &[u8]) -> i64 {
        wasm_only(self, "the Audio authority")
    }

    fn input_state(&mut self) -> i64 {
        wasm_only(self, "the Input authority")
    }

    fn table_as_of(&mut self, seq: u64, op: u32, table: u32, payload: &[u8]) -> i64 {
        if let Err(answer) = within_bounds(self, payload) {
            return answer;
        }
        // Nothing is metered natively: the read is bounded only by history.
        match super::past::past_op(self, seq, op, table, payload, u64::MAX) {
            Ok(answer) => answer,
            Err(super::meter::OutOfFuel) => answer_error(
                self,
                &HostError::NotPermitted("the past read is larger than any budget".into()),
            ),
        }
    }
}
