//! The Input authority on Bevy's input.
//!
//! [`IntersticeInputPlugin`] reads Bevy's keyboard, mouse button, mouse motion and wheel
//! messages every frame and delivers each (keys, then buttons, motion and wheel, each kind in
//! order) to the `#[reducer(on = "input")]`
//! reducers of the module holding the Input authority, as an
//! `interstice_sdk::input::InputEvent`. With no holder, input is not delivered anywhere.
//! Cursor positions and gamepads arrive with the windowed (Gpu) work.

use bevy::input::ButtonState;
use bevy::input::keyboard::KeyboardInput;
use bevy::input::mouse::{MouseButton, MouseButtonInput, MouseMotion, MouseWheel};
use bevy::prelude::*;
use interstice::abi::{EventSpec, TypeKind, TypeSet, Value, ValueType};
use interstice::{IntersticeSystems, Modules, ReducerQueue};

/// Name of the event type in the holder's schema (defined by the SDK).
const EVENT_TYPE: &str = "InputEvent";

/// Delivers Bevy input to the module holding the Input authority. Needs Bevy's
/// `InputPlugin` (part of `DefaultPlugins`) for the messages it reads.
#[derive(Debug, Default, Clone)]
pub struct IntersticeInputPlugin;

impl Plugin for IntersticeInputPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, deliver_input.in_set(IntersticeSystems::Ingest));
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

#[allow(clippy::too_many_arguments)]
fn deliver_input(
    mut keys: MessageReader<KeyboardInput>,
    mut buttons: MessageReader<MouseButtonInput>,
    mut motion: MessageReader<MouseMotion>,
    mut wheel: MessageReader<MouseWheel>,
    modules: Res<Modules>,
    mut queue: ResMut<ReducerQueue>,
    mut warned: Local<bool>,
) {
    let events: Vec<(&str, Vec<Value>)> = keys
        .read()
        .map(|k| {
            (
                "Key",
                vec![
                    Value::String(format!("{:?}", k.key_code)),
                    Value::Bool(k.state == ButtonState::Pressed),
                    Value::Option(
                        k.text
                            .as_ref()
                            .map(|t| Box::new(Value::String(t.to_string()))),
                    ),
                ],
            )
        })
        .chain(buttons.read().map(|b| {
            (
                "MouseButton",
                vec![
                    Value::String(button_name(b.button)),
                    Value::Bool(b.state == ButtonState::Pressed),
                ],
            )
        }))
        .chain(motion.read().map(|m| {
            (
                "MouseMotion",
                vec![Value::F32(m.delta.x), Value::F32(m.delta.y)],
            )
        }))
        .chain(
            wheel
                .read()
                .map(|w| ("Wheel", vec![Value::F32(w.x), Value::F32(w.y)])),
        )
        .collect();
    if events.is_empty() {
        return;
    }
    let Some(holder) = modules
        .authorities()
        .get(&interstice::abi::Authority::Input)
        .cloned()
    else {
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
