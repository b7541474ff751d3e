//! A draw list turned into Bevy entities, reused frame after frame.
//!
//! Consecutive shapes share one mesh ("batch"): its vertex buffers are rewritten in place.
//! Texts and sprites are entities of their own. Each batch, text and sprite sits on its own
//! layer (`z`), in submission order, so what was submitted later is drawn on top. Entities
//! and meshes live in pools that only grow to the largest frame seen: a frame that draws less
//! hides what it does not use, so nothing is spawned or allocated again in steady state.

use crate::tessellate::{Vertices, linear};
use bevy::asset::RenderAssetUsages;
use bevy::camera::visibility::NoFrustumCulling;
use bevy::mesh::{Mesh, Mesh2d, PrimitiveTopology};
use bevy::prelude::*;
use bevy::sprite_render::{AlphaMode2d, ColorMaterial, MeshMaterial2d};
use bevy::text::{FontSize, TextColor, TextFont};
use interstice::abi::draw::{self, DrawCommand};
use std::collections::HashMap;

/// Distance between two layers along `z`.
const LAYER_STEP: f32 = 0.001;
/// The first layer's `z` (the 2D camera sees -1000..1000).
const FIRST_LAYER: f32 = -900.0;

/// Marks the camera the Gpu holder controls.
#[derive(Component, Debug, Default)]
pub struct ModuleCamera;

/// A pooled mesh batch.
#[derive(Component, Debug)]
pub struct ShapeBatch;

/// A pooled text.
#[derive(Component, Debug)]
pub struct ModuleText;

/// A pooled sprite.
#[derive(Component, Debug)]
pub struct ModuleSprite;

/// The pools and the last frame's settings.
#[derive(Resource, Default)]
pub struct DrawScene {
    batches: Vec<(Entity, Handle<Mesh>)>,
    texts: Vec<Entity>,
    sprites: Vec<Entity>,
    material: Option<Handle<ColorMaterial>>,
    images: HashMap<String, Handle<Image>>,
    vertices: Vertices,
    /// Commands of the last frame applied.
    pub commands: usize,
    /// Frames applied.
    pub frames: u64,
}

impl DrawScene {
    /// Pooled entities: mesh batches, texts and sprites (for leak checks and the inspector).
    pub fn pooled(&self) -> (usize, usize, usize) {
        (self.batches.len(), self.texts.len(), self.sprites.len())
    }
}

fn layer_z(layer: usize) -> f32 {
    FIRST_LAYER + layer as f32 * LAYER_STEP
}

fn color(c: &draw::Color) -> Color {
    let [r, g, b, a] = linear(c);
    Color::linear_rgba(r, g, b, a)
}

type BatchItem = (&'static mut Transform, &'static mut Visibility);
type TextItem = (
    &'static mut Text2d,
    &'static mut TextFont,
    &'static mut TextColor,
    &'static mut Transform,
    &'static mut Visibility,
);
type TextFilter = (With<ModuleText>, Without<ShapeBatch>, Without<ModuleCamera>);
type SpriteItem = (
    &'static mut Sprite,
    &'static mut Transform,
    &'static mut Visibility,
);
type SpriteFilter = (
    With<ModuleSprite>,
    Without<ModuleText>,
    Without<ShapeBatch>,
    Without<ModuleCamera>,
);

/// What `apply` needs from the world.
#[derive(bevy::ecs::system::SystemParam)]
pub struct SceneParams<'w, 's> {
    commands: Commands<'w, 's>,
    meshes: ResMut<'w, Assets<Mesh>>,
    materials: ResMut<'w, Assets<ColorMaterial>>,
    assets: Option<Res<'w, AssetServer>>,
    clear: ResMut<'w, ClearColor>,
    cameras: Query<'w, 's, (&'static mut Transform, &'static mut Projection), With<ModuleCamera>>,
    batches: Query<'w, 's, BatchItem, (With<ShapeBatch>, Without<ModuleCamera>)>,
    texts: Query<'w, 's, TextItem, TextFilter>,
    sprites: Query<'w, 's, SpriteItem, SpriteFilter>,
}

/// Shows a frame's draw list.
pub fn apply(scene: &mut DrawScene, p: &mut SceneParams, list: &[DrawCommand]) {
    let material = scene
        .material
        .get_or_insert_with(|| {
            p.materials.add(ColorMaterial {
                alpha_mode: AlphaMode2d::Blend,
                ..ColorMaterial::from_color(Color::WHITE)
            })
        })
        .clone();
    let (mut layer, mut batches, mut texts, mut sprites) = (0usize, 0usize, 0usize, 0usize);
    let mut vertices = std::mem::take(&mut scene.vertices);
    vertices.clear();
    for command in list {
        match command {
            DrawCommand::Clear(c) => p.clear.0 = color(c),
            DrawCommand::Camera2d { position, zoom } => {
                for (mut transform, mut projection) in &mut p.cameras {
                    transform.translation.x = position.x;
                    transform.translation.y = position.y;
                    if let Projection::Orthographic(ortho) = &mut *projection {
                        ortho.scale = 1.0 / zoom;
                    }
                }
            }
            DrawCommand::Shape { shape, color } => vertices.push(shape, color),
            DrawCommand::Text {
                text,
                position,
                size,
                color: c,
            } => {
                flush(scene, p, &mut vertices, &material, &mut batches, &mut layer);
                let entity = pooled(&mut scene.texts, texts, || {
                    p.commands
                        .spawn((ModuleText, Text2d::default(), Visibility::Hidden))
                        .id()
                });
                texts += 1;
                let z = layer_z(layer);
                layer += 1;
                let place = Vec3::new(position.x, position.y, z);
                show_text(p, entity, text, place, *size, color(c));
            }
            DrawCommand::Sprite {
                asset,
                position,
                size,
                rotation,
                tint,
            } => {
                flush(scene, p, &mut vertices, &material, &mut batches, &mut layer);
                let Some(server) = &p.assets else { continue };
                let image = scene
                    .images
                    .entry(asset.clone())
                    .or_insert_with(|| server.load(asset.clone()))
                    .clone();
                let entity = pooled(&mut scene.sprites, sprites, || {
                    p.commands
                        .spawn((ModuleSprite, Sprite::default(), Visibility::Hidden))
                        .id()
                });
                sprites += 1;
                let z = layer_z(layer);
                layer += 1;
                let transform = Transform::from_translation(Vec3::new(position.x, position.y, z))
                    .with_rotation(Quat::from_rotation_z(*rotation));
                let sprite = Sprite {
                    image,
                    color: color(tint),
                    custom_size: size.map(|s| bevy::math::Vec2::new(s.x, s.y)),
                    ..default()
                };
                show_sprite(p, entity, sprite, transform);
            }
        }
    }
    flush(scene, p, &mut vertices, &material, &mut batches, &mut layer);
    scene.vertices = vertices;
    hide_unused(scene, p, batches, texts, sprites);
    scene.commands = list.len();
    scene.frames += 1;
}

/// Shows the pooled text entity `entity`: `text` at `place`.
fn show_text(
    p: &mut SceneParams,
    entity: Entity,
    text: &String,
    place: Vec3,
    size: f32,
    tint: Color,
) {
    let px = FontSize::Px(size.clamp(1.0, 512.0));
    match p.texts.get_mut(entity) {
        Ok((mut t, mut font, mut tc, mut transform, mut visibility)) => {
            if t.0 != *text {
                t.0.clone_from(text);
            }
            if font.font_size != px {
                font.font_size = px;
            }
            tc.set_if_neq(TextColor(tint));
            transform.set_if_neq(Transform::from_translation(place));
            visibility.set_if_neq(Visibility::Inherited);
        }
        // Spawned this frame: its components arrive with the commands.
        Err(_) => {
            p.commands.entity(entity).insert((
                Text2d(text.clone()),
                TextFont::from_font_size(px),
                TextColor(tint),
                Transform::from_translation(place),
                Visibility::Inherited,
            ));
        }
    }
}

/// Shows the pooled sprite entity `entity` as `sprite` at `transform`.
fn show_sprite(p: &mut SceneParams, entity: Entity, sprite: Sprite, transform: Transform) {
    match p.sprites.get_mut(entity) {
        Ok((mut s, mut t, mut visibility)) => {
            if s.image != sprite.image
                || s.color != sprite.color
                || s.custom_size != sprite.custom_size
            {
                *s = sprite;
            }
            t.set_if_neq(transform);
            visibility.set_if_neq(Visibility::Inherited);
        }
        // Spawned this frame: its components arrive with the commands.
        Err(_) => {
            p.commands
                .entity(entity)
                .insert((sprite, transform, Visibility::Inherited));
        }
    }
}

/// Hides the pooled entities past what this frame used, and empties the unused meshes so they
/// hold no memory.
fn hide_unused(
    scene: &DrawScene,
    p: &mut SceneParams,
    batches: usize,
    texts: usize,
    sprites: usize,
) {
    for (entity, mesh) in &scene.batches[batches..] {
        if let Ok((_, mut visibility)) = p.batches.get_mut(*entity) {
            visibility.set_if_neq(Visibility::Hidden);
        }
        if let Some(mut mesh) = p.meshes.get_mut(mesh)
            && mesh.count_vertices() > 0
        {
            set_vertices(&mut mesh, Vec::new(), Vec::new());
        }
    }
    for entity in &scene.texts[texts..] {
        if let Ok((.., mut visibility)) = p.texts.get_mut(*entity) {
            visibility.set_if_neq(Visibility::Hidden);
        }
    }
    for entity in &scene.sprites[sprites..] {
        if let Ok((.., mut visibility)) = p.sprites.get_mut(*entity) {
            visibility.set_if_neq(Visibility::Hidden);
        }
    }
}

/// The pool's entity `index`, spawned if the pool is that short.
fn pooled(pool: &mut Vec<Entity>, index: usize, spawn: impl FnOnce() -> Entity) -> Entity {
    if index == pool.len() {
        pool.push(spawn());
    }
    pool[index]
}

fn set_vertices(mesh: &mut Mesh, positions: Vec<[f32; 3]>, colors: Vec<[f32; 4]>) {
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
    mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, colors);
}

/// Ends the current run of shapes: its vertices go into the next pooled mesh.
fn flush(
    scene: &mut DrawScene,
    p: &mut SceneParams,
    vertices: &mut Vertices,
    material: &Handle<ColorMaterial>,
    batches: &mut usize,
    layer: &mut usize,
) {
    if vertices.is_empty() {
        return;
    }
    let z = layer_z(*layer);
    *layer += 1;
    if *batches == scene.batches.len() {
        let mut mesh = Mesh::new(
            PrimitiveTopology::TriangleList,
            RenderAssetUsages::default(),
        );
        set_vertices(&mut mesh, Vec::new(), Vec::new());
        let handle = p.meshes.add(mesh);
        let entity = p
            .commands
            .spawn((
                ShapeBatch,
                Mesh2d(handle.clone()),
                MeshMaterial2d(material.clone()),
                // The mesh changes every frame; its bounds are never recomputed.
                NoFrustumCulling,
                Transform::from_xyz(0.0, 0.0, z),
                Visibility::Inherited,
            ))
            .id();
        scene.batches.push((entity, handle));
    }
    let (entity, handle) = &scene.batches[*batches];
    *batches += 1;
    if let Some(mut mesh) = p.meshes.get_mut(handle) {
        // Reuse the mesh's own buffers when it has them.
        let positions = take_attribute(&mut mesh, Mesh::ATTRIBUTE_POSITION, |v| match v {
            bevy::mesh::VertexAttributeValues::Float32x3(v) => Some(v),
            _ => None,
        });
        let colors = take_attribute(&mut mesh, Mesh::ATTRIBUTE_COLOR, |v| match v {
            bevy::mesh::VertexAttributeValues::Float32x4(v) => Some(v),
            _ => None,
        });
        let (mut positions, mut colors) = (positions, colors);
        positions.clear();
        colors.clear();
        positions.extend_from_slice(&vertices.positions);
        colors.extend_from_slice(&vertices.colors);
        set_vertices(&mut mesh, positions, colors);
    }
    if let Ok((mut transform, mut visibility)) = p.batches.get_mut(*entity) {
        if transform.translation.z != z {
            transform.translation.z = z;
        }
        visibility.set_if_neq(Visibility::Inherited);
    }
    vertices.clear();
}

fn take_attribute<T>(
    mesh: &mut Mesh,
    attribute: bevy::mesh::MeshVertexAttribute,
    pick: impl FnOnce(bevy::mesh::VertexAttributeValues) -> Option<Vec<T>>,
) -> Vec<T> {
    mesh.remove_attribute(attribute)
        .and_then(pick)
        .unwrap_or_default()
}
