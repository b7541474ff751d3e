use interstice_sdk::*;

interstice_module!(visibility: Public, authorities: [Gpu, Input]);

#[interstice_type]
pub enum Shape {
    Empty,
    Dot(f32, f32),
    Rect { w: u32, h: u32 },
}

#[interstice_type]
pub struct Tagged {
    tags: Vec<String>,
    shape: Option<Shape>,
}

#[table(stateful)]
pub struct MyTable {
    #[primary_key(auto_inc)]
    id: u64,
    #[index(hash, unique)]
    email: String,
    #[index(btree)]
    created_at: i64,
    #[index(btree, auto_inc)]
    serial: u32,
    content: String,
    extra: Tagged,
}

#[table(ephemeral)]
pub struct Cache {
    #[primary_key]
    key: (u32, u32),
    value: Box<Shape>,
}

#[reducer(on = "init")]
fn init(_ctx: ReducerContext) {}

#[reducer(on = "connect")]
fn on_connect(_ctx: ReducerContext, node_id: String) {
    host_calls::log(&node_id);
}

#[reducer(on = "other.items.update")]
fn on_update(_ctx: ReducerContext, _old: Tagged, _new: Tagged) {}

#[reducer]
fn my_reducer(ctx: ReducerContext, email: String, shape: Shape) -> Result<(), HostError> {
    let row = ctx.current.tables.mytable().insert(MyTable {
        id: 0,
        email,
        created_at: 0,
        serial: 0,
        content: "hello".to_string(),
        extra: Tagged { tags: vec![], shape: Some(shape) },
    })?;
    let _same = ctx.current.tables.mytable().email().find(&row.email);
    let _recent = ctx.current.tables.mytable().created_at().range(0..10);
    let _all: Vec<MyTable> = ctx.current.tables.mytable().scan().collect();
    let _cached = ctx.current.cache().get(&(1, 2));
    Ok(())
}

#[query]
fn count(ctx: QueryContext) -> u64 {
    ctx.current.tables.mytable().count()
}

fn main() {}
