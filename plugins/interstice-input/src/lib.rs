//! The Input authority on Bevy's input.
//!
//! [`IntersticeInputPlugin`] reads Bevy's keyboard, mouse button, cursor, mouse motion, wheel
//! and gamepad messages every frame and delivers each (keys, then buttons, cursor, motion,
//! wheel and gamepads, each kind in order) to the `#[reducer(on = "input")]` reducers of the
//! module holding the Input authority, as an `interstice_sdk::input::InputEvent`. Cursor
//! positions come in window pixels and in world units through the first active 2D camera.
//! It also keeps what is held down for the holder to poll (`input::state()`). With no holder,
//! input is not delivered anywhere. Gamepads need Bevy's gilrs plugin (`bevy_gilrs`).

use bevy::input::ButtonState;
use bevy::input::gamepad::{
    Gamepad, GamepadAxisChangedEvent, GamepadButtonChangedEvent, GamepadConnection,
    GamepadConnectionEvent, GamepadInput,
};
use bevy::input::keyboard::KeyboardInput;
use bevy::input::mouse::{MouseButton, MouseButtonInput, MouseMotion, MouseWheel};
use bevy::prelude::*;
use bevy::window::CursorMoved;
use interstice::abi::draw::Vec2 as DrawVec2;
use interstice::abi::input::{Cursor, GamepadState, InputState};
use interstice::abi::{Authority, EventSpec, TypeKind, TypeSet, Value, ValueType};
use interstice::{IntersticeSystems, Modules, ReducerQueue};

/// Name of the event type in the holder's schema (defined by the SDK).
const EVENT_TYPE: &str = "InputEvent";

/// Delivers Bevy input to the module holding the Input authority. Needs Bevy's
/// `InputPlugin` (part of `DefaultPlugins`) for the messages it reads.
#[derive(Debug, Default, Clone)]
pub struct IntersticeInputPlugin;

impl Plugin for IntersticeInputPlugin {
    fn build(&self, app: &mut App) {
        // Registered here too so the plugin works without WindowPlugin (a headless node).
        app.add_message::<CursorMoved>()
            .add_message::<GamepadConnectionEvent>()
            .add_message::<GamepadButtonChangedEvent>()
            .add_message::<GamepadAxisChangedEvent>();
        app.add_systems(
            Update,
            (deliver_input, update_input_state).in_set(IntersticeSystems::Ingest),
        );
    }
}

/// One event, as the variant name and its fields in declaration order.
fn value(variant: &str, fields: Vec<Value>, types: &TypeSet) -> Option<Value> {
    let TypeKind::Enum(variants) = &types.get(EVENT_TYPE)?.kind else {
        return None;
    };
    let index = variants.iter().position(|v| v.name == variant)?;
    Some(Value::Enum {
        variant: index as u32,
        payload: Box::new(Value::Struct(fields)),
    })
}

fn button_name(button: MouseButton) -> String {
    match button {
        MouseButton::Other(n) => format!("Other({n})"),
        other => format!("{other:?}"),
    }
}

/// Bevy's input messages, read in delivery order.
#[derive(bevy::ecs::system::SystemParam)]
struct InputMessages<'w, 's> {
    keys: MessageReader<'w, 's, KeyboardInput>,
    buttons: MessageReader<'w, 's, MouseButtonInput>,
    cursor: MessageReader<'w, 's, CursorMoved>,
    motion: MessageReader<'w, 's, MouseMotion>,
    wheel: MessageReader<'w, 's, MouseWheel>,
    connections: MessageReader<'w, 's, GamepadConnectionEvent>,
    pad_buttons: MessageReader<'w, 's, GamepadButtonChangedEvent>,
    pad_axes: MessageReader<'w, 's, GamepadAxisChangedEvent>,
}

impl InputMessages<'_, '_> {
    /// This frame's input, in delivery order by kind: each as an `InputEvent` variant's name
    /// and fields.
    fn events(&mut self, placement: &Placement) -> Vec<(&'static str, Vec<Value>)> {
        let mut events: Vec<(&'static str, Vec<Value>)> = Vec::new();
        events.extend(self.keys.read().map(|k| {
            (
                "Key",
                vec![
                    Value::String(format!("{:?}", k.key_code)),
                    pressed(k.state),
                    Value::Option(
                        k.text
                            .as_ref()
                            .map(|t| Box::new(Value::String(t.to_string()))),
                    ),
                ],
            )
        }));
        events.extend(self.buttons.read().map(|b| {
            (
                "MouseButton",
                vec![Value::String(button_name(b.button)), pressed(b.state)],
            )
        }));
        events.extend(self.cursor.read().map(|c| {
            let world = placement.world(c.window, c.position);
            (
                "CursorMoved",
                vec![
                    Value::F32(c.position.x),
                    Value::F32(c.position.y),
                    Value::F32(world.x),
                    Value::F32(world.y),
                ],
            )
        }));
        events.extend(self.motion.read().map(|m| {
            (
                "MouseMotion",
                vec![Value::F32(m.delta.x), Value::F32(m.delta.y)],
            )
        }));
        events.extend(
            self.wheel
                .read()
                .map(|w| ("Wheel", vec![Value::F32(w.x), Value::F32(w.y)])),
        );
        events.extend(self.connections.read().map(|c| {
            let (name, connected) = match &c.connection {
                GamepadConnection::Connected { name, .. } => (name.clone(), true),
                GamepadConnection::Disconnected => (String::new(), false),
            };
            (
                "GamepadConnection",
                vec![
                    Value::U64(c.gamepad.to_bits()),
                    Value::String(name),
                    Value::Bool(connected),
                ],
            )
        }));
        events.extend(self.pad_buttons.read().map(|b| {
            (
                "GamepadButton",
                vec![
                    Value::U64(b.entity.to_bits()),
                    Value::String(format!("{:?}", b.button)),
                    Value::F32(b.value),
                ],
            )
        }));
        events.extend(self.pad_axes.read().map(|a| {
            (
                "GamepadAxis",
                vec![
                    Value::U64(a.entity.to_bits()),
                    Value::String(format!("{:?}", a.axis)),
                    Value::F32(a.value),
                ],
            )
        }));
        events
    }
}

/// Windows and 2D cameras, to place the cursor in the world.
#[derive(bevy::ecs::system::SystemParam)]
struct Placement<'w, 's> {
    windows: Query<'w, 's, &'static Window>,
    cameras: Query<'w, 's, (&'static Camera, &'static GlobalTransform), With<Camera2d>>,
}

impl Placement<'_, '_> {
    /// The window point in world units: through the first active 2D camera, or relative to
    /// the window's centre (y up) without one.
    fn world(&self, window: Entity, position: Vec2) -> Vec2 {
        let through_camera = self
            .cameras
            .iter()
            .filter(|(camera, _)| camera.is_active)
            .find_map(|(camera, transform)| camera.viewport_to_world_2d(transform, position).ok());
        through_camera.unwrap_or_else(|| {
            let size = self
                .windows
                .get(window)
                .map(|w| Vec2::new(w.width(), w.height()))
                .unwrap_or_default();
            Vec2::new(position.x - size.x / 2.0, size.y / 2.0 - position.y)
        })
    }
}

fn pressed(state: ButtonState) -> Value {
    Value::Bool(state == ButtonState::Pressed)
}

fn deliver_input(
    mut read: InputMessages,
    placement: Placement,
    modules: Res<Modules>,
    mut queue: ResMut<ReducerQueue>,
    mut warned: Local<bool>,
) {
    let events = read.events(&placement);
    if events.is_empty() {
        return;
    }
    let Some(holder) = modules.authorities().get(&Authority::Input).cloned() else {
        return;
    };
    let Some(schema) = modules.schema(&holder).cloned() else {
        return;
    };
    let reducers: Vec<String> = schema
        .reducers
        .iter()
        .filter(|r| r.on == Some(EventSpec::Host("input".into())))
        .map(|r| r.name.clone())
        .collect();
    if reducers.is_empty() {
        return;
    }
    for (variant, fields) in events {
        let mut args = Vec::new();
        let encoded = value(variant, fields, &schema.types).and_then(|v| {
            interstice::abi::codec::encode_value(
                &v,
                &ValueType::Named(EVENT_TYPE.into()),
                &schema.types,
                &mut args,
            )
            .ok()
        });
        if encoded.is_none() {
            if !std::mem::replace(&mut *warned, true) {
                warn!(
                    "`{holder}` holds the Input authority but its input reducers do not take the SDK's InputEvent; input is not delivered"
                );
            }
            return;
        }
        for reducer in &reducers {
            queue.push_event(holder.clone(), reducer.clone(), args.clone());
        }
    }
}

/// What the holder polls with `input::state()`: refreshed every frame before reducers run,
/// only while someone holds the Input authority and only when it changed.
fn update_input_state(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    windows: Query<(Entity, &Window)>,
    placement: Placement,
    gamepads: Query<(Entity, &Gamepad, Option<&Name>)>,
    mut modules: ResMut<Modules>,
    mut last: Local<Option<InputState>>,
) {
    if !modules.authorities().contains_key(&Authority::Input) {
        return;
    }
    let mut state = InputState::default();
    if let Some(keys) = keys {
        state.keys = keys.get_pressed().map(|k| format!("{k:?}")).collect();
        state.keys.sort();
    }
    if let Some(buttons) = buttons {
        state.mouse_buttons = buttons.get_pressed().map(|b| button_name(*b)).collect();
        state.mouse_buttons.sort();
    }
    state.cursor = windows.iter().find_map(|(entity, window)| {
        let position = window.cursor_position()?;
        let world = placement.world(entity, position);
        Some(Cursor {
            window: DrawVec2::new(position.x, position.y),
            world: Some(DrawVec2::new(world.x, world.y)),
        })
    });
    state.gamepads = gamepads
        .iter()
        .map(|(entity, pad, name)| {
            let mut buttons: Vec<String> = pad.get_pressed().map(|b| format!("{b:?}")).collect();
            buttons.sort();
            let mut axes: Vec<(String, f32)> = pad
                .get_analog_axes()
                .filter_map(|input| match input {
                    GamepadInput::Axis(axis) => {
                        Some((format!("{axis:?}"), pad.get(*axis).unwrap_or(0.0)))
                    }
                    _ => None,
                })
                .collect();
            axes.sort_by(|a, b| a.0.cmp(&b.0));
            GamepadState {
                id: entity.to_bits(),
                name: name.map(|n| n.as_str().to_string()).unwrap_or_default(),
                buttons,
                axes,
            }
        })
        .collect();
    if last.as_ref() != Some(&state) {
        modules.set_input_state(&state);
        *last = Some(state);
    }
}
