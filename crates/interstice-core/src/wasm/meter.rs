//! Host work paid for in fuel.
//!
//! Fuel counts wasm instructions, but one instruction can ask the host for a lot: a raw
//! `table_op(Range)` walks a whole table, a `log` copies 16 MiB. Host functions therefore
//! charge the calling guest's fuel for the rows and bytes they handle, so a loop of cheap
//! requests runs out of fuel like any other loop — and work that would not be paid for is
//! refused *before* it is done (a range stops walking once it has touched what the remaining
//! fuel pays for).
//!
//! Charges for single rows and bytes are owed and settled in bulk (every [`SETTLE_AT`] fuel,
//! and before any multi-row operation), so the hot path — a reducer updating thousands of rows
//! a frame — pays one addition per call, not a store round trip. What is owed when a call
//! ends is dropped with the call: a call may use up to [`SETTLE_AT`] fuel more than its
//! budget, the same on every node (the meter starts at zero for every call, so replay is
//! exact).

use super::state::HostState;
use wasmtime::{Caller, Trap};

/// Fuel charged for each row a host call reads, writes, encodes or decodes.
pub const FUEL_PER_ROW: u64 = 100;

/// Fuel charged for each byte a host call copies in or out of the guest (payloads,
/// responses, log lines, file contents, draw lists, samples).
pub const FUEL_PER_BYTE: u64 = 1;

/// Fuel owed before it is taken from the store.
pub const SETTLE_AT: u64 = 64 * 1024;

/// Fuel a call owes for host work it has not paid for yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct Meter {
    owed: u64,
}

/// The guest cannot pay for the work it asked for: the call ends as if it ran out of fuel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfFuel;

impl Meter {
    /// Owes the cost of `rows` rows.
    #[inline]
    pub fn rows(&mut self, rows: u64) {
        self.owed = self.owed.saturating_add(rows.saturating_mul(FUEL_PER_ROW));
    }

    /// Owes the cost of `bytes` bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: usize) {
        self.owed = self
            .owed
            .saturating_add((bytes as u64).saturating_mul(FUEL_PER_BYTE));
    }

    /// Whether enough is owed to settle now.
    #[inline]
    pub fn due(&self) -> bool {
        self.owed >= SETTLE_AT
    }

    /// How many more rows `fuel` (what the store has left) pays for, after what is owed.
    pub fn rows_affordable(&self, fuel: u64) -> u64 {
        fuel.saturating_sub(self.owed) / FUEL_PER_ROW
    }
}

/// Takes what the call owes from its store's fuel. A call that cannot pay ends with
/// [`Trap::OutOfFuel`], exactly like a guest loop that burns its fuel.
pub fn settle(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<()> {
    let owed = std::mem::take(&mut caller.data_mut().meter.owed);
    if owed == 0 {
        return Ok(());
    }
    let left = caller.get_fuel()?;
    if owed > left {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    caller.set_fuel(left - owed)
}

/// [`settle`] if enough is owed.
#[inline]
pub fn settle_if_due(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<()> {
    if caller.data().meter.due() {
        settle(caller)
    } else {
        Ok(())
    }
}

/// The trap that ends a call which asked for work it cannot pay for.
pub fn out_of_fuel(_: OutOfFuel) -> wasmtime::Error {
    wasmtime::Error::new(Trap::OutOfFuel)
}
