//! Bevy input reaches the module holding the Input authority, in order; a module that
//! subscribes to input without holding it is refused at load.

use bevy::ecs::system::RunSystemOnce;
use bevy::input::ButtonState;
use bevy::input::InputPlugin;
use bevy::input::keyboard::{Key, KeyCode, KeyboardInput};
use bevy::input::mouse::{MouseButton, MouseButtonInput, MouseScrollUnit, MouseWheel};
use bevy::prelude::*;
use bevy::window::CursorMoved;
use interstice::prelude::*;
use interstice_input::IntersticeInputPlugin;

fn keys_wasm() -> Vec<u8> {
    interstice_build::test_modules!["keys"].remove(0)
}

/// A headless app with Bevy's input and the keys module holding the Input authority.
fn keys_app() -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        InputPlugin,
        IntersticePlugin::default().with_module_bytes("keys", keys_wasm()),
        IntersticeInputPlugin,
    ));
    app.update();
    app
}

fn seen(app: &mut App) -> Vec<String> {
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice
                .query::<_, Vec<String>>("keys", "seen", ())
                .unwrap()
        })
        .unwrap()
}

#[test]
fn input_is_delivered_to_the_holder_in_order() {
    let mut app = keys_app();
    let window = Entity::PLACEHOLDER;
    app.world_mut().write_message(KeyboardInput {
        key_code: KeyCode::KeyA,
        logical_key: Key::Character("a".into()),
        state: ButtonState::Pressed,
        text: Some("a".into()),
        repeat: false,
        window,
    });
    app.world_mut().write_message(MouseButtonInput {
        button: MouseButton::Left,
        state: ButtonState::Pressed,
        window,
    });
    app.world_mut().write_message(MouseWheel {
        unit: MouseScrollUnit::Line,
        x: 0.0,
        y: 2.0,
        window,
        phase: bevy::input::touch::TouchPhase::Moved,
    });
    app.world_mut().write_message(KeyboardInput {
        key_code: KeyCode::KeyA,
        logical_key: Key::Character("a".into()),
        state: ButtonState::Released,
        text: None,
        repeat: false,
        window,
    });
    app.world_mut().write_message(CursorMoved {
        window,
        position: Vec2::new(10.0, 20.0),
        delta: None,
    });
    app.update();
    app.update();
    assert_eq!(
        seen(&mut app),
        [
            "key KeyA down a",
            "key KeyA up",
            "button Left down",
            // No window or camera: world is relative to the (absent) window's centre, y up.
            "cursor 10 20 world 10 -20",
            "wheel 0 2"
        ]
    );
}

fn held(app: &mut App) -> Vec<String> {
    app.world_mut()
        .run_system_once(|mut interstice: Interstice| {
            interstice
                .query::<_, Vec<String>>("keys", "held", ())
                .unwrap()
        })
        .unwrap()
}

#[test]
fn the_holder_polls_what_is_held_down() {
    let mut app = keys_app();
    assert_eq!(held(&mut app), Vec::<String>::new());
    let window = Entity::PLACEHOLDER;
    for key in [KeyCode::ArrowLeft, KeyCode::KeyQ] {
        app.world_mut().write_message(KeyboardInput {
            key_code: key,
            logical_key: Key::Unidentified(bevy::input::keyboard::NativeKey::Unidentified),
            state: ButtonState::Pressed,
            text: None,
            repeat: false,
            window,
        });
    }
    app.world_mut().write_message(MouseButtonInput {
        button: MouseButton::Right,
        state: ButtonState::Pressed,
        window,
    });
    app.update();
    assert_eq!(held(&mut app), ["ArrowLeft", "KeyQ", "button Right"]);
    app.world_mut().write_message(KeyboardInput {
        key_code: KeyCode::KeyQ,
        logical_key: Key::Unidentified(bevy::input::keyboard::NativeKey::Unidentified),
        state: ButtonState::Released,
        text: None,
        repeat: false,
        window,
    });
    app.update();
    assert_eq!(held(&mut app), ["ArrowLeft", "button Right"]);
}
