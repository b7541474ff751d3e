//! A guest's side of the arena game: its node calls the host node's `arena` reducers
//! (`src/bindings/node_arena_node.toml`) and subscribes to its players and coins, keeping a
//! replica here that the guest's game mirrors into sprites.

use interstice_sdk::*;

interstice_module!();

/// A player, as the host's arena last said.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    #[primary_key]
    pub name: String,
    /// The node id of the node playing it (empty: the host's own player).
    pub owner: String,
    pub x: f32,
    pub y: f32,
    pub hue: f32,
    pub score: u32,
    /// The last steering input the host applied.
    pub input: u64,
    /// When it last moved, in the host's milliseconds.
    pub moved_at: u64,
}

/// A coin, as the host's arena last said.
#[table]
#[derive(Debug, Clone, PartialEq)]
pub struct Gem {
    #[primary_key]
    pub id: u32,
    pub x: f32,
    pub y: f32,
}

type RemotePlayer = bindings::arena_node::arena::Player;
type RemoteCoin = bindings::arena_node::arena::Coin;

/// Joins the host's arena as `name`.
#[reducer]
fn join(ctx: ReducerContext, name: String, hue: f32) -> Result<(), HostError> {
    bindings::arena_node::arena::join(&ctx, name, hue)
}

/// Steers `name` on the host's arena (`input` numbers the input, for prediction).
#[reducer]
fn steer(ctx: ReducerContext, name: String, dx: f32, dy: f32, input: u64) -> Result<(), HostError> {
    bindings::arena_node::arena::steer(&ctx, name, dx, dy, input)
}

/// Takes `name` out of the host's arena.
#[reducer]
fn leave(ctx: ReducerContext, name: String) -> Result<(), HostError> {
    bindings::arena_node::arena::leave(&ctx, name)
}

fn keep_avatar(ctx: &ReducerContext, p: RemotePlayer) -> Result<(), HostError> {
    let avatars = ctx.current.tables.avatar();
    let avatar = Avatar {
        name: p.name,
        owner: p.owner,
        x: p.x,
        y: p.y,
        hue: p.hue,
        score: p.score,
        input: p.input,
        moved_at: p.moved_at,
    };
    if avatars.get(&avatar.name).is_some() {
        avatars.update(avatar).map(drop)
    } else {
        avatars.insert(avatar).map(drop)
    }
}

fn keep_gem(ctx: &ReducerContext, c: RemoteCoin) -> Result<(), HostError> {
    let gems = ctx.current.tables.gem();
    let gem = Gem {
        id: c.id,
        x: c.x,
        y: c.y,
    };
    if gems.get(&gem.id).is_some() {
        gems.update(gem).map(drop)
    } else {
        gems.insert(gem).map(drop)
    }
}

#[reducer(on = "arena_node.arena.player.insert")]
fn player_joined(ctx: ReducerContext, row: RemotePlayer) -> Result<(), HostError> {
    keep_avatar(&ctx, row)
}

#[reducer(on = "arena_node.arena.player.update")]
fn player_moved(
    ctx: ReducerContext,
    _old: RemotePlayer,
    new: RemotePlayer,
) -> Result<(), HostError> {
    keep_avatar(&ctx, new)
}

#[reducer(on = "arena_node.arena.player.delete")]
fn player_left(ctx: ReducerContext, row: RemotePlayer) -> Result<(), HostError> {
    ctx.current.tables.avatar().delete(&row.name).map(drop)
}

#[reducer(on = "arena_node.arena.coin.insert")]
fn coin_placed(ctx: ReducerContext, row: RemoteCoin) -> Result<(), HostError> {
    keep_gem(&ctx, row)
}

#[reducer(on = "arena_node.arena.coin.update")]
fn coin_moved(ctx: ReducerContext, _old: RemoteCoin, new: RemoteCoin) -> Result<(), HostError> {
    keep_gem(&ctx, new)
}
