//! The arena game's rules, authoritative on the host's node: players join, steer, and pick up
//! coins for points, and leave. Guests play through their own node (`modules/arena_client`),
//! which calls these reducers remotely and subscribes to the tables.
//!
//! A player belongs to the node that joined it (`ctx.caller_node()`, bound to that node's
//! key; the host's own player belongs to no peer): only that node may steer it or make it
//! leave. A player who leaves, or whose node disconnects, disappears; their score is kept by
//! name and owner in `record`, and given back when they join again. Everything is in tables,
//! so a host with a data directory keeps the arena across restarts.
//!
//! The movement rule ([`step`]) is a plain function that the game links natively too: a guest
//! predicts its own moves with exactly the code the host runs.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// Half the arena's width and height.
pub const HALF_WIDTH: f32 = 380.0;
pub const HALF_HEIGHT: f32 = 280.0;
/// How close a player must come to pick a coin up.
pub const REACH: f32 = 24.0;
/// Coins on the field.
pub const COINS: u32 = 6;
/// Players in the arena at once.
pub const MAX_PLAYERS: u64 = 8;
/// The longest move of one `steer` call, in units along each axis.
pub const MAX_STEP: f32 = 40.0;

/// A player in the arena now.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    #[primary_key]
    pub name: String,
    /// The node id of the node that joined it; empty for the host's own player.
    pub owner: String,
    pub x: f32,
    pub y: f32,
    /// Colour hue in degrees.
    pub hue: f32,
    pub score: u32,
    /// The number of the last `steer` input applied (the guest's prediction drops the inputs
    /// up to it).
    pub input: u64,
    /// When it last moved, in the host's milliseconds (other games interpolate by it).
    pub moved_at: u64,
}

/// A score kept for a player who left, given back when they join again.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    #[primary_key]
    pub name: String,
    pub owner: String,
    pub score: u32,
}

/// A coin waiting to be picked up.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Coin {
    #[primary_key]
    pub id: u32,
    pub x: f32,
    pub y: f32,
}

/// Where a player at `(x, y)` ends up after steering by `(dx, dy)`: each axis moves at most
/// [`MAX_STEP`] (a non-finite step does not move), and the arena's edge stops it.
pub fn step(x: f32, y: f32, dx: f32, dy: f32) -> (f32, f32) {
    let clamp = |d: f32| {
        if d.is_finite() {
            d.clamp(-MAX_STEP, MAX_STEP)
        } else {
            0.0
        }
    };
    (
        (x + clamp(dx)).clamp(-HALF_WIDTH, HALF_WIDTH),
        (y + clamp(dy)).clamp(-HALF_HEIGHT, HALF_HEIGHT),
    )
}

fn random_spot(ctx: &ReducerContext) -> (f32, f32) {
    let x = ctx.random_below((HALF_WIDTH * 2.0) as u64 - 40) as f32 - HALF_WIDTH + 20.0;
    let y = ctx.random_below((HALF_HEIGHT * 2.0) as u64 - 40) as f32 - HALF_HEIGHT + 20.0;
    (x, y)
}

/// Who is calling: a peer's node id, or empty for this node.
fn caller(ctx: &ReducerContext) -> String {
    ctx.caller_node().unwrap_or_default()
}

/// `name`'s player, if the caller owns it.
fn owned(ctx: &ReducerContext, name: &str) -> Result<Player, HostError> {
    let player = ctx
        .current
        .tables
        .player()
        .get(&name.to_string())
        .ok_or_else(|| HostError::NotFound {
            table: "player".into(),
            key: name.into(),
        })?;
    if player.owner != caller(ctx) {
        return Err(HostError::InvalidPayload(format!(
            "`{name}` is another player's"
        )));
    }
    Ok(player)
}

/// Puts `name` in the arena for the calling node (again: nothing changes), with the score it
/// had when it left, and the coins if there are none. A name another node plays is refused,
/// and so is a second name for a node that plays one already (one node, one player).
#[reducer]
fn join(ctx: ReducerContext, name: String, hue: f32) -> Result<(), HostError> {
    if name.is_empty() || name.len() > 32 {
        return Err(HostError::InvalidPayload("a name is 1 to 32 bytes".into()));
    }
    let owner = caller(&ctx);
    let players = ctx.current.tables.player();
    match players.get(&name) {
        Some(player) if player.owner == owner => {}
        Some(_) => {
            return Err(HostError::InvalidPayload(format!(
                "`{name}` is taken by another player"
            )));
        }
        None => {
            if let Some(mine) = players.scan().find(|p| p.owner == owner) {
                return Err(HostError::InvalidPayload(format!(
                    "you play `{}` already",
                    mine.name
                )));
            }
            if players.count() >= MAX_PLAYERS {
                return Err(HostError::InvalidPayload(format!(
                    "the arena is full ({MAX_PLAYERS} players)"
                )));
            }
            let records = ctx.current.tables.record();
            let score = match records.get(&name) {
                Some(record) if record.owner == owner => {
                    records.delete(&name)?;
                    record.score
                }
                _ => 0,
            };
            let (x, y) = random_spot(&ctx);
            players.insert(Player {
                name,
                owner,
                x,
                y,
                hue: hue.rem_euclid(360.0),
                score,
                input: 0,
                moved_at: ctx.timestamp(),
            })?;
        }
    }
    let coins = ctx.current.tables.coin();
    if coins.count() == 0 {
        for id in 0..COINS {
            let (x, y) = random_spot(&ctx);
            coins.insert(Coin { id, x, y })?;
        }
    }
    Ok(())
}

/// Moves `name` by `(dx, dy)` ([`step`]); `input` is the guest's number for this input (the
/// row keeps the last one). A coin within reach is picked up (a point) and reappears
/// elsewhere. Only the player's own node may steer it.
#[reducer]
fn steer(ctx: ReducerContext, name: String, dx: f32, dy: f32, input: u64) -> Result<(), HostError> {
    let mut player = owned(&ctx, &name)?;
    (player.x, player.y) = step(player.x, player.y, dx, dy);
    player.input = player.input.max(input);
    player.moved_at = ctx.timestamp();
    let coins = ctx.current.tables.coin();
    for mut coin in coins.scan().collect::<Vec<_>>() {
        let (cx, cy) = (coin.x - player.x, coin.y - player.y);
        if cx * cx + cy * cy <= REACH * REACH {
            player.score += 1;
            (coin.x, coin.y) = random_spot(&ctx);
            coins.update(coin)?;
        }
    }
    ctx.current.tables.player().update(player).map(drop)
}

fn remove(ctx: &ReducerContext, player: Player) -> Result<(), HostError> {
    let records = ctx.current.tables.record();
    let record = Record {
        name: player.name.clone(),
        owner: player.owner,
        score: player.score,
    };
    match records.get(&record.name) {
        // The name's record is someone else's: theirs stays, this score goes.
        Some(kept) if kept.owner != record.owner => {}
        Some(_) => {
            records.update(record)?;
        }
        None => {
            records.insert(record)?;
        }
    }
    ctx.current.tables.player().delete(&player.name).map(drop)
}

/// Takes `name` out of the arena (its score is kept for when it joins again). Only the
/// player's own node may.
#[reducer]
fn leave(ctx: ReducerContext, name: String) -> Result<(), HostError> {
    let player = owned(&ctx, &name)?;
    remove(&ctx, player)
}

/// A guest's node went away: its players leave.
#[reducer(on = "disconnect")]
fn node_left(ctx: ReducerContext, node_id: String) -> Result<(), HostError> {
    let players = ctx.current.tables.player();
    for player in players
        .scan()
        .filter(|p| p.owner == node_id)
        .collect::<Vec<_>>()
    {
        remove(&ctx, player)?;
    }
    Ok(())
}

/// The host's game opens the arena when it starts: the guests' players kept from before a
/// restart leave (their nodes join again when they reconnect). Only this node may call it.
#[reducer]
fn open_arena(ctx: ReducerContext) -> Result<(), HostError> {
    if ctx.caller_node().is_some() {
        return Err(HostError::InvalidPayload(
            "only the host opens the arena".into(),
        ));
    }
    let players = ctx.current.tables.player();
    for player in players
        .scan()
        .filter(|p| !p.owner.is_empty())
        .collect::<Vec<_>>()
    {
        remove(&ctx, player)?;
    }
    Ok(())
}

/// The player the calling node plays, if any.
#[query]
fn my_player(ctx: QueryContext) -> Option<Player> {
    let me = ctx.caller_node().unwrap_or_default();
    ctx.current.tables.player().scan().find(|p| p.owner == me)
}

/// Every player's name and score, best first.
#[query]
fn scores(ctx: QueryContext) -> Vec<(String, u32)> {
    let mut scores: Vec<(String, u32)> = ctx
        .current
        .tables
        .player()
        .scan()
        .map(|p| (p.name, p.score))
        .collect();
    scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_bounded_and_stays_inside() {
        assert_eq!(step(0.0, 0.0, 5.0, -3.0), (5.0, -3.0));
        assert_eq!(step(0.0, 0.0, 500.0, f32::NAN), (MAX_STEP, 0.0));
        assert_eq!(step(HALF_WIDTH, 0.0, 10.0, 0.0), (HALF_WIDTH, 0.0));
    }
}
