//! The Gpu authority on Bevy's 2D renderer.
//!
//! [`IntersticeRenderPlugin`] sends a `render` event to the `#[reducer(on = "render")]`
//! reducers of the module holding the Gpu authority once per frame (in
//! [`IntersticeSystems::Ingest`]); what the reducer submitted with `gpu::Frame` is shown in
//! [`IntersticeSystems::Publish`] of the same frame: shapes as vertex-coloured meshes, texts as
//! `Text2d`, sprites from the asset folder, the camera and the clear colour
//! ([`scene`]). Modules without the authority cannot draw: the host call refuses them.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use interstice::prelude::*;
//! use interstice_render::IntersticeRenderPlugin;
//!
//! App::new()
//!     .add_plugins((
//!         DefaultPlugins,
//!         IntersticePlugin::default().with_module_file("graphics.wasm"),
//!         IntersticeRenderPlugin::default(),
//!     ))
//!     .run();
//! ```

pub mod scene;
pub mod screenshot;
pub mod tessellate;

use bevy::prelude::*;
use interstice::abi::{Authority, EventSpec, ModuleSchema};
use interstice::{IntersticeSystems, Modules, ReducerQueue};
use scene::{DrawScene, ModuleCamera, SceneParams};
use std::sync::Arc;

/// Draws what the Gpu holder submits. Needs Bevy's render, sprite and text plugins for the
/// picture (`DefaultPlugins`); without them (headless) the scene is still kept, which is what
/// tests and benchmarks measure.
#[derive(Debug, Clone)]
pub struct IntersticeRenderPlugin {
    /// Spawn the 2D camera the holder controls (turn off to bring your own, marked
    /// [`ModuleCamera`]).
    pub spawn_camera: bool,
}

impl Default for IntersticeRenderPlugin {
    fn default() -> Self {
        IntersticeRenderPlugin { spawn_camera: true }
    }
}

impl Plugin for IntersticeRenderPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<DrawScene>()
            .init_resource::<ClearColor>()
            .add_systems(Update, request_frame.in_set(IntersticeSystems::Ingest))
            .add_systems(Update, present.in_set(IntersticeSystems::Publish));
        if self.spawn_camera {
            app.add_systems(Startup, spawn_camera);
        }
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((Camera2d, ModuleCamera));
}

/// The holder's render reducers, recomputed when the holder or its schema changes.
#[derive(Default)]
struct RenderTargets {
    schema: Option<Arc<ModuleSchema>>,
    holder: String,
    reducers: Vec<String>,
}

fn request_frame(
    modules: Res<Modules>,
    mut queue: ResMut<ReducerQueue>,
    mut targets: Local<RenderTargets>,
) {
    let Some(holder) = modules.authorities().get(&Authority::Gpu) else {
        targets.schema = None;
        return;
    };
    let Some(schema) = modules.schema(holder) else {
        return;
    };
    if targets
        .schema
        .as_ref()
        .is_none_or(|s| !Arc::ptr_eq(s, schema))
    {
        let render = EventSpec::Host("render".into());
        *targets = RenderTargets {
            schema: Some(schema.clone()),
            holder: holder.clone(),
            reducers: schema
                .reducers
                .iter()
                .filter(|r| r.on.as_ref() == Some(&render))
                .map(|r| r.name.clone())
                .collect(),
        };
    }
    for reducer in &targets.reducers {
        queue.push_event(targets.holder.clone(), reducer.clone(), Vec::new());
    }
}

fn present(mut modules: ResMut<Modules>, mut scene: ResMut<DrawScene>, mut params: SceneParams) {
    if let Some((_, list)) = modules.take_draw_list() {
        scene::apply(&mut scene, &mut params, &list);
    }
}
