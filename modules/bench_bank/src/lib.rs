//! The module `interstice bench transfer` runs: the workload of SpacetimeDB's keynote
//! "transfer" benchmark. Accounts live on a logged table; every call moves an amount from one
//! account to another, or fails (and changes nothing) when the payer cannot afford it.
//!
//! It is public so that any client key an open node admits may call it: a benchmark's clients
//! are many keys, each its own connection.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// One account.
#[table]
pub struct Account {
    #[primary_key]
    pub id: u32,
    pub balance: i64,
}

/// Sets accounts `first..first + count` to `balance`, creating those that do not exist. The
/// bench seeds in slices so that no single call is large.
#[reducer]
fn seed(ctx: ReducerContext, first: u32, count: u32, balance: i64) -> Result<(), String> {
    let end = first
        .checked_add(count)
        .ok_or_else(|| format!("accounts {first}..{first}+{count} overflow u32"))?;
    let accounts = ctx.current.tables.account();
    for id in first..end {
        let row = Account { id, balance };
        let written = if accounts.get(&id).is_some() {
            accounts.update(row)
        } else {
            accounts.insert(row)
        };
        written.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Moves `amount` from account `from` to account `to`.
#[reducer]
fn transfer(ctx: ReducerContext, from: u32, to: u32, amount: i64) -> Result<(), String> {
    if from == to {
        return Err("same account".into());
    }
    if amount <= 0 {
        return Err("the amount must be positive".into());
    }
    let accounts = ctx.current.tables.account();
    let mut payer = accounts
        .get(&from)
        .ok_or_else(|| format!("no account {from}"))?;
    let mut payee = accounts
        .get(&to)
        .ok_or_else(|| format!("no account {to}"))?;
    if payer.balance < amount {
        return Err(format!(
            "insufficient funds: account {from} has {}",
            payer.balance
        ));
    }
    payer.balance -= amount;
    payee.balance += amount;
    accounts.update(payer).map_err(|e| e.to_string())?;
    accounts.update(payee).map_err(|e| e.to_string())?;
    Ok(())
}

/// How many accounts there are and the sum of their balances: a transfer changes neither.
#[query]
fn totals(ctx: QueryContext) -> (u64, i64) {
    let mut sum = 0i64;
    let mut count = 0u64;
    for account in ctx.current.tables.account().scan() {
        sum = sum.wrapping_add(account.balance);
        count += 1;
    }
    (count, sum)
}
