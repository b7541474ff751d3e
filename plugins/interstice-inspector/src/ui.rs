//! What the inspector draws, as a plain function of an egui context and the node's state, so a
//! benchmark can run it without a window.

use crate::table_view::TableView;
use crate::timeline::Timeline;
use bevy::prelude::*;
use bevy_egui::egui;
use interstice::abi::codec::{Reader, decode_value, encode_value};
use interstice::abi::{EventSpec, ModuleSchema, Visibility};
use interstice::network::PeerHealth;
use interstice::values::{display, parse};
use interstice::{GuestLogTail, Interstice, InvocationId};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// What the inspector shows and what was typed into it.
#[derive(Resource, Default)]
pub struct InspectorState {
    /// Whether it is shown.
    pub open: bool,
    /// The table whose rows are shown.
    pub table: Option<TableView>,
    /// Arguments typed for each reducer and query (`module.name` → one text per parameter).
    pub args: HashMap<String, Vec<String>>,
    /// A reducer call the inspector queued, until its outcome arrives.
    pub pending: Option<InvocationId>,
    /// The outcome of the last call or query.
    pub outcome: Option<String>,
    /// The history timeline of the shown table's module, once its area was opened.
    pub timeline: Option<Timeline>,
    /// When the timeline last loaded new transactions (seconds since start).
    pub timeline_refreshed: f64,
}

impl InspectorState {
    /// Whether a past state is shown (reducer calls are then disabled).
    pub fn showing_past(&self) -> bool {
        self.timeline.as_ref().is_some_and(Timeline::is_past)
    }
}

/// Counters the inspector shows.
#[derive(Resource, Default, Debug)]
pub struct Metrics {
    /// Time spent running reducers in each of the last frames (milliseconds), newest last.
    pub reduce_ms: VecDeque<f32>,
    /// Committed transactions per second, over the last second.
    pub tx_per_second: f64,
    window_start: f64,
    window_commits: u64,
}

impl Metrics {
    const FRAMES: usize = 120;

    /// One frame's reducer time.
    pub fn record_reduce(&mut self, spent: Duration) {
        if self.reduce_ms.len() == Self::FRAMES {
            self.reduce_ms.pop_front();
        }
        self.reduce_ms.push_back(spent.as_secs_f32() * 1000.0);
    }

    /// `commits` transactions committed by `now` (seconds).
    pub fn record_commits(&mut self, commits: u64, now: f64) {
        self.window_commits += commits;
        if now - self.window_start >= 1.0 {
            self.tx_per_second = self.window_commits as f64 / (now - self.window_start);
            self.window_start = now;
            self.window_commits = 0;
        }
    }

    /// Mean reducer time a frame over the kept frames.
    pub fn mean_reduce_ms(&self) -> f32 {
        if self.reduce_ms.is_empty() {
            0.0
        } else {
            self.reduce_ms.iter().sum::<f32>() / self.reduce_ms.len() as f32
        }
    }
}

/// Read-only state shown next to the node's.
pub struct Sources<'a> {
    /// Counters.
    pub metrics: &'a Metrics,
    /// The guest log.
    pub logs: &'a GuestLogTail,
    /// Peers, on a node with a network.
    pub peers: Option<&'a PeerHealth>,
    /// The health of storage, on a node with a data directory.
    pub storage: Option<&'a interstice::StorageHealth>,
    /// Storage itself, for the history timeline (`None`: the node keeps no history).
    pub history: Option<&'a interstice::Storage>,
    /// Seconds since start.
    pub now: f64,
}

pub(crate) const HIGHLIGHT: egui::Color32 = egui::Color32::from_rgb(255, 210, 90);

/// Draws the inspector window.
pub fn show(ctx: &egui::Context, state: &mut InspectorState, api: &mut Interstice, src: &Sources) {
    egui::Window::new("Interstice inspector")
        .default_pos([10.0, 10.0])
        .default_width(460.0)
        .show(ctx, |ui| {
            overview(ui, api, src);
            ui.separator();
            let schemas: Vec<_> = api.modules().schemas().cloned().collect();
            for schema in &schemas {
                module(ui, state, api, schema);
            }
            if let Some(outcome) = &state.outcome {
                ui.separator();
                ui.label(outcome);
            }
            ui.separator();
            crate::history_ui::history(ui, state, api, src);
            table_rows(ui, state, api, src.now);
            ui.separator();
            peers_and_logs(ui, src);
        });
}

fn overview(ui: &mut egui::Ui, api: &Interstice, src: &Sources) {
    let m = src.metrics;
    ui.label(format!(
        "{} module(s) · {} queued reducer call(s) · {:.0} tx/s · reducers {:.2} ms/frame (last {:.2})",
        api.modules().schemas().count(),
        api.queued(),
        m.tx_per_second,
        m.mean_reduce_ms(),
        m.reduce_ms.back().copied().unwrap_or(0.0)
    ));
    // A halted log is the one thing an operator must not miss: red, with the cause.
    match src.storage {
        None => {
            ui.label("storage: ephemeral (no data directory)");
        }
        Some(health) if health.accepts_writes() && health.snapshot.is_none() => {
            ui.label("storage: ok");
        }
        Some(health) => {
            let color = if health.accepts_writes() {
                HIGHLIGHT
            } else {
                egui::Color32::from_rgb(255, 90, 90)
            };
            ui.colored_label(color, format!("storage: {health}"));
        }
    }
}

fn module(
    ui: &mut egui::Ui,
    state: &mut InspectorState,
    api: &mut Interstice,
    schema: &ModuleSchema,
) {
    let visibility = match schema.visibility {
        Visibility::Public => "public",
        Visibility::Private => "private",
    };
    let authorities: Vec<String> = schema.authorities.iter().map(|a| a.to_string()).collect();
    let title = format!(
        "{} {} · {visibility}{}",
        schema.name,
        schema.version,
        if authorities.is_empty() {
            String::new()
        } else {
            format!(" · {}", authorities.join(", "))
        }
    );
    egui::CollapsingHeader::new(title)
        .id_salt(("module", &schema.name))
        .default_open(true)
        .show(ui, |ui| {
            ui.label("tables");
            for table in schema.tables.iter().filter(|t| !t.name.starts_with("__")) {
                let rows = api
                    .database()
                    .table(&schema.name, &table.name)
                    .map_or(0, |t| t.len());
                let selected = state
                    .table
                    .as_ref()
                    .is_some_and(|v| v.module == schema.name && v.table == table.name);
                if ui
                    .selectable_label(selected, format!("  {} — {rows} row(s)", table.name))
                    .clicked()
                {
                    api.watch_table(&schema.name, &table.name);
                    state.table = Some(TableView::new(&schema.name, &table.name));
                }
            }
            let scheduled = api
                .database()
                .table(&schema.name, "__schedule")
                .map_or(0, |t| t.len());
            if scheduled > 0 {
                ui.label(format!("schedule: {scheduled} entr(ies) waiting"));
            }
            let callable: Vec<_> = schema.reducers.iter().filter(|r| r.on.is_none()).collect();
            if !callable.is_empty() {
                ui.label("reducers");
            }
            for reducer in callable {
                let params: Vec<_> = reducer.args.iter().map(|a| (&a.name, &a.ty)).collect();
                let live = !state.showing_past();
                let call = ("call", live);
                if let Some(texts) = form(ui, state, (&schema.name, &reducer.name), &params, call) {
                    match encode_args(schema, &params, &texts) {
                        Ok(args) => {
                            let id = api.queue_reducer_encoded(&schema.name, &reducer.name, args);
                            state.pending = Some(id);
                            state.outcome =
                                Some(format!("{}.{} queued", schema.name, reducer.name));
                        }
                        Err(e) => state.outcome = Some(e),
                    }
                }
            }
            let subscribers: Vec<String> = schema
                .reducers
                .iter()
                .filter_map(|r| match &r.on {
                    Some(EventSpec::Host(event)) => Some(format!("{} (on {event})", r.name)),
                    Some(_) => Some(format!("{} (on a table event)", r.name)),
                    None => None,
                })
                .collect();
            if !subscribers.is_empty() {
                ui.label(format!("subscribers: {}", subscribers.join(", ")));
            }
            if !schema.queries.is_empty() {
                ui.label("queries");
            }
            for query in &schema.queries {
                let params: Vec<_> = query.args.iter().map(|a| (&a.name, &a.ty)).collect();
                let run = ("run", true);
                if let Some(texts) = form(ui, state, (&schema.name, &query.name), &params, run) {
                    state.outcome = Some(match encode_args(schema, &params, &texts) {
                        Ok(args) => match api.query_encoded(&schema.name, &query.name, &args) {
                            Ok(bytes) => {
                                let mut r = Reader::new(&bytes);
                                match decode_value(&query.returns, &schema.types, &mut r) {
                                    Ok(value) => format!(
                                        "{}.{} = {}",
                                        schema.name,
                                        query.name,
                                        display(&value, &query.returns, &schema.types)
                                    ),
                                    Err(e) => format!("{}: undecodable result: {e}", query.name),
                                }
                            }
                            Err(e) => format!("{}.{} failed: {e}", schema.name, query.name),
                        },
                        Err(e) => e,
                    });
                }
            }
        });
}

/// One line per reducer or query: its name, a text field per parameter and a button (greyed
/// out when not `enabled`). Returns the texts when the button was pressed.
fn form(
    ui: &mut egui::Ui,
    state: &mut InspectorState,
    (module, name): (&str, &str),
    params: &[(&String, &interstice::abi::ValueType)],
    (button, enabled): (&str, bool),
) -> Option<Vec<String>> {
    let texts = state
        .args
        .entry(format!("{module}.{name}"))
        .or_insert_with(|| vec![String::new(); params.len()]);
    texts.resize(params.len(), String::new());
    let mut pressed = false;
    ui.horizontal(|ui| {
        ui.label(format!("  {name}("));
        for ((param, ty), text) in params.iter().zip(texts.iter_mut()) {
            ui.add(
                egui::TextEdit::singleline(text)
                    .hint_text(format!("{param}: {ty}"))
                    .desired_width(90.0),
            );
        }
        ui.label(")");
        pressed = ui
            .add_enabled(enabled, egui::Button::new(button))
            .on_disabled_hover_text("a past state is shown: back to live to call reducers")
            .clicked();
    });
    pressed.then(|| texts.clone())
}

fn encode_args(
    schema: &ModuleSchema,
    params: &[(&String, &interstice::abi::ValueType)],
    texts: &[String],
) -> Result<Vec<u8>, String> {
    let mut args = Vec::new();
    for ((name, ty), text) in params.iter().zip(texts) {
        let value =
            parse(text, ty, &schema.types).map_err(|e| format!("argument `{name}` ({ty}): {e}"))?;
        encode_value(&value, ty, &schema.types, &mut args)
            .map_err(|e| format!("argument `{name}`: {e}"))?;
    }
    Ok(args)
}

fn table_rows(ui: &mut egui::Ui, state: &mut InspectorState, api: &Interstice, now: f64) {
    let Some(view) = state.table.as_mut() else {
        ui.label("select a table to see its rows");
        return;
    };
    let Some(schema) = api.modules().schema(&view.module).cloned() else {
        state.table = None;
        return;
    };
    let Some(table) = schema.tables.iter().find(|t| t.name == view.table) else {
        state.table = None;
        return;
    };
    // A past point replaces the live page until "Back to live".
    if let Some(point) = state.timeline.as_ref().and_then(|t| t.point.as_ref()) {
        ui.label(format!("{}.{}", view.module, view.table));
        crate::history_ui::past_rows(ui, point, table, &schema);
        return;
    }
    ui.horizontal(|ui| {
        ui.label(format!("{}.{}", view.module, view.table));
        let column = table
            .fields
            .get(view.filter_column)
            .map_or("", |f| f.name.as_str());
        egui::ComboBox::from_id_salt("filter column")
            .selected_text(column)
            .show_ui(ui, |ui| {
                for (i, field) in table.fields.iter().enumerate() {
                    if ui
                        .selectable_value(&mut view.filter_column, i, &field.name)
                        .changed()
                    {
                        view.first_page();
                    }
                }
            });
        if ui
            .add(
                egui::TextEdit::singleline(&mut view.filter)
                    .hint_text("filter")
                    .desired_width(120.0),
            )
            .changed()
        {
            view.first_page();
        }
        if ui.button("◀").clicked() {
            view.previous_page();
        }
        ui.label(format!("page {}", view.starts.len()));
        if ui.button("▶").clicked() {
            view.next_page();
        }
    });
    view.refresh(api.database(), &schema.types, now);
    egui::ScrollArea::both().max_height(260.0).show(ui, |ui| {
        egui::Grid::new("rows").striped(true).show(ui, |ui| {
            for field in &table.fields {
                ui.strong(&field.name);
            }
            ui.end_row();
            for (key, cells) in &view.rows {
                let lit = view.highlighted(key, now);
                for cell in cells {
                    if lit {
                        ui.colored_label(HIGHLIGHT, cell);
                    } else {
                        ui.label(cell);
                    }
                }
                ui.end_row();
            }
        });
    });
    if view.truncated {
        ui.label(format!(
            "stopped after {} rows; the next page goes on from here",
            crate::table_view::SCAN_BUDGET
        ));
    }
}

/// One dialed node's line in the peers panel: what a player waiting to join sees too.
pub(crate) fn link_line(
    address: std::net::SocketAddr,
    link: &interstice::network::DialedNode,
) -> String {
    let rtt = match (&link.state, link.rtt) {
        (interstice::network::LinkState::Connected { .. }, Some(rtt)) => {
            format!(", RTT {:.1} ms", rtt.as_secs_f64() * 1000.0)
        }
        _ => String::new(),
    };
    format!(
        "{address}: {}{rtt} (for {:.0} s)",
        link.state,
        link.since.elapsed().as_secs_f64()
    )
}

fn peers_and_logs(ui: &mut egui::Ui, src: &Sources) {
    if let Some(peers) = src.peers {
        egui::CollapsingHeader::new(format!("peers ({})", peers.peers.len()))
            .id_salt("peers")
            .show(ui, |ui| {
                for (address, link) in &peers.dialed {
                    let line = link_line(*address, link);
                    match link.state {
                        interstice::network::LinkState::Connected { .. } => ui.label(line),
                        interstice::network::LinkState::Connecting { .. } => {
                            ui.colored_label(egui::Color32::YELLOW, line)
                        }
                        _ => ui.colored_label(egui::Color32::LIGHT_RED, line),
                    };
                }
                for (id, peer) in &peers.peers {
                    ui.label(format!(
                        "{id}: {}{}",
                        if peer.connected() {
                            "connected"
                        } else {
                            "disconnected"
                        },
                        peer.rtt
                            .map(|r| format!(", RTT {} µs", r.as_micros()))
                            .unwrap_or_default()
                    ));
                }
            });
    }
    egui::CollapsingHeader::new(format!("log ({})", src.logs.lines.len()))
        .id_salt("log")
        .default_open(true)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .max_height(120.0)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for line in src.logs.lines.iter().rev().take(50).rev() {
                        ui.label(format!("[{}] {}", line.module, line.message));
                    }
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice::network::{DialedNode, LinkState};

    #[test]
    fn dialed_nodes_read_as_the_player_would_want() {
        let address = "127.0.0.1:8090".parse().unwrap();
        let node = |state| DialedNode {
            state,
            since: std::time::Instant::now(),
            rtt: Some(std::time::Duration::from_micros(12_300)),
        };
        let connected = link_line(
            address,
            &node(LinkState::Connected {
                node_id: "abc".into(),
                fingerprint: "00".into(),
            }),
        );
        assert!(
            connected.starts_with("127.0.0.1:8090: connected to abc, RTT 12.3 ms"),
            "{connected}"
        );
        let lost = link_line(
            address,
            &node(LinkState::Lost {
                why: "timed out".into(),
                attempt: 3,
            }),
        );
        assert!(
            lost.contains("lost (timed out); reconnecting (attempt 3)") && !lost.contains("RTT"),
            "{lost}"
        );
        let refused = link_line(
            address,
            &node(LinkState::Refused {
                why: "key changed".into(),
                attempt: 2,
            }),
        );
        assert!(refused.contains("refused: key changed"), "{refused}");
    }
}
