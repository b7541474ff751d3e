//! The arena game's rules, authoritative on the host's node: players join, steer, and pick up
//! coins for points. Guests play through their own node (`modules/arena_client`), which calls
//! these reducers remotely and subscribes to the tables.

use interstice_sdk::*;

interstice_module!(visibility: Public);

/// Half the arena's width and height.
pub const HALF_WIDTH: f32 = 380.0;
pub const HALF_HEIGHT: f32 = 280.0;
/// How close a player must come to pick a coin up.
pub const REACH: f32 = 24.0;
/// Coins on the field.
pub const COINS: u32 = 6;

/// A player.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    #[primary_key]
    pub name: String,
    pub x: f32,
    pub y: f32,
    /// Colour hue in degrees.
    pub hue: f32,
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

fn random_spot(ctx: &ReducerContext) -> (f32, f32) {
    let x = ctx.random_below((HALF_WIDTH * 2.0) as u64 - 40) as f32 - HALF_WIDTH + 20.0;
    let y = ctx.random_below((HALF_HEIGHT * 2.0) as u64 - 40) as f32 - HALF_HEIGHT + 20.0;
    (x, y)
}

/// Puts `name` in the arena (again: nothing changes), and the coins if there are none.
#[reducer]
fn join(ctx: ReducerContext, name: String, hue: f32) -> Result<(), HostError> {
    if name.is_empty() || name.len() > 32 {
        return Err(HostError::InvalidPayload("a name is 1 to 32 bytes".into()));
    }
    let players = ctx.current.tables.player();
    if players.get(&name).is_none() {
        let (x, y) = random_spot(&ctx);
        players.insert(Player {
            name,
            x,
            y,
            hue: hue.rem_euclid(360.0),
            score: 0,
        })?;
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

/// Moves `name` by `(dx, dy)` (at most 40 units a step), inside the arena; a coin within reach
/// is picked up (a point) and reappears elsewhere.
#[reducer]
fn steer(ctx: ReducerContext, name: String, dx: f32, dy: f32) -> Result<(), HostError> {
    let players = ctx.current.tables.player();
    let Some(mut player) = players.get(&name) else {
        return Err(HostError::NotFound {
            table: "player".into(),
            key: name,
        });
    };
    let step = |d: f32| {
        if d.is_finite() {
            d.clamp(-40.0, 40.0)
        } else {
            0.0
        }
    };
    player.x = (player.x + step(dx)).clamp(-HALF_WIDTH, HALF_WIDTH);
    player.y = (player.y + step(dy)).clamp(-HALF_HEIGHT, HALF_HEIGHT);
    let coins = ctx.current.tables.coin();
    for mut coin in coins.scan().collect::<Vec<_>>() {
        let (cx, cy) = (coin.x - player.x, coin.y - player.y);
        if cx * cx + cy * cy <= REACH * REACH {
            player.score += 1;
            (coin.x, coin.y) = random_spot(&ctx);
            coins.update(coin)?;
        }
    }
    players.update(player).map(drop)
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
