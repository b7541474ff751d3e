//! Drawing the history timeline of [`crate::timeline`]: a scrubber over the kept
//! transactions, step buttons, back to live, the selected transaction's cause and diff, and
//! the shown table as it was then (read-only, marked).

use crate::timeline::{ChangeKind, HistorySource, MAX_TRANSACTIONS, Point, RowDiff, Timeline};
use crate::ui::{InspectorState, Sources};
use bevy_egui::egui;
use interstice::Interstice;
use interstice::abi::{ModuleSchema, TableSchema, Value};
use interstice::values::display;

/// While live, the timeline loads new transactions at most this often (seconds).
pub const HISTORY_REFRESH_EVERY: f64 = 1.0;

/// The colour of everything that shows a past state.
pub const PAST: egui::Color32 = egui::Color32::from_rgb(110, 170, 255);

/// The "History" area of the shown table's module.
pub(crate) fn history(
    ui: &mut egui::Ui,
    state: &mut InspectorState,
    api: &Interstice,
    src: &Sources,
) {
    let Some((module, table)) = state
        .table
        .as_ref()
        .map(|v| (v.module.clone(), v.table.clone()))
    else {
        state.timeline = None;
        return;
    };
    let header = egui::CollapsingHeader::new(format!("history of {module}"))
        .id_salt("history")
        .show(ui, |ui| {
            let source = HistorySource {
                storage: src.history,
                db: api.database(),
                modules: api.modules(),
            };
            let timeline = match &mut state.timeline {
                Some(t) if t.module == module && t.table == table => t,
                slot => slot.insert(Timeline::new(&module, &table)),
            };
            let due = src.now - state.timeline_refreshed >= HISTORY_REFRESH_EVERY;
            if !timeline.loaded || (!timeline.is_past() && due) {
                timeline.refresh(source);
                state.timeline_refreshed = src.now;
            }
            scrubber(ui, timeline, source);
            if let Some(point) = &timeline.point
                && let Some(schema) = api.modules().schema(&module)
            {
                cause_and_diff(ui, point, schema);
            }
        });
    // A closed area shows the live state.
    if header.body_returned.is_none()
        && let Some(timeline) = &mut state.timeline
    {
        timeline.back_to_live();
    }
}

/// The scrubber: a slider over the kept transactions (its last position is live), step
/// buttons and back to live.
fn scrubber(ui: &mut egui::Ui, timeline: &mut Timeline, source: HistorySource<'_>) {
    if let Some(message) = &timeline.message {
        ui.colored_label(crate::ui::HIGHLIGHT, message);
    }
    if timeline.transactions.is_empty() {
        if timeline.message.is_none() {
            ui.label("no kept transaction changed this module's logged tables yet");
        }
        return;
    }
    if timeline.older_left_out {
        ui.label(format!(
            "the newest transactions (at most {MAX_TRANSACTIONS}); older ones may be kept, not shown"
        ));
    }
    let seqs: Vec<u64> = timeline.transactions.iter().map(|t| t.seq).collect();
    let live = seqs.len();
    let mut position = timeline.selected_index().unwrap_or(live);
    ui.horizontal(|ui| {
        if ui
            .button("◀")
            .on_hover_text("one transaction back")
            .clicked()
        {
            timeline.step_back(source);
        }
        let slider = egui::Slider::new(&mut position, 0..=live)
            .show_value(true)
            .custom_formatter(|v, _| match seqs.get(v as usize) {
                Some(seq) => format!("tx {seq}"),
                None => "live".into(),
            });
        if ui.add(slider).changed() {
            timeline.select(seqs.get(position).copied(), source);
        }
        if ui
            .button("▶")
            .on_hover_text("one transaction forward")
            .clicked()
        {
            timeline.step_forward(source);
        }
        if ui
            .add_enabled(timeline.is_past(), egui::Button::new("Back to live"))
            .clicked()
        {
            timeline.back_to_live();
        }
    });
    match timeline.selected() {
        Some(seq) => ui.colored_label(PAST, format!("showing the state after tx {seq}")),
        None => ui.label(format!(
            "live · {} kept transaction(s), tx {} to {}",
            seqs.len(),
            seqs.first().copied().unwrap_or(0),
            seqs.last().copied().unwrap_or(0)
        )),
    };
}

/// The selected transaction: who ran what, when, and the rows it changed.
fn cause_and_diff(ui: &mut egui::Ui, point: &Point, schema: &ModuleSchema) {
    let cause = &point.cause;
    ui.colored_label(
        PAST,
        format!(
            "tx {} · {}{} · caller: {} · at {}",
            cause.seq, cause.reducer, cause.args, cause.caller, cause.time
        ),
    );
    egui::ScrollArea::vertical()
        .id_salt("diff")
        .max_height(160.0)
        .show(ui, |ui| {
            for diff in &point.diff {
                ui.label(diff_line(diff, schema));
            }
            if point.diff_left_out > 0 {
                ui.label(format!("… and {} more changed row(s)", point.diff_left_out));
            }
        });
}

/// One changed row: `table[key] kind: before → after`.
pub fn diff_line(diff: &RowDiff, schema: &ModuleSchema) -> String {
    let table = schema.tables.iter().find(|t| t.name == diff.table);
    let row = |row: &Option<Vec<Value>>| match row {
        Some(row) => row_text(row, table, schema),
        None => "—".into(),
    };
    let before = match &diff.before {
        Ok(before) => row(before),
        Err(why) => format!("unknown ({why})"),
    };
    let kind = match diff.kind {
        ChangeKind::Inserted => "inserted",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Written => "written",
    };
    let key = match table.and_then(|t| t.fields.get(usize::from(t.primary_key))) {
        Some(field) => display(&diff.key, &field.ty, &schema.types),
        None => format!("{:?}", diff.key),
    };
    format!(
        "{}[{key}] {kind}: {before} → {}",
        diff.table,
        row(&diff.after)
    )
}

/// A row as `(field: value, ...)`, with the table's layout when it is known.
fn row_text(row: &[Value], table: Option<&TableSchema>, schema: &ModuleSchema) -> String {
    let cells: Vec<String> = match table {
        Some(table) => row
            .iter()
            .zip(&table.fields)
            .map(|(value, field)| {
                format!(
                    "{}: {}",
                    field.name,
                    display(value, &field.ty, &schema.types)
                )
            })
            .collect(),
        None => row.iter().map(|value| format!("{value:?}")).collect(),
    };
    format!("({})", cells.join(", "))
}

/// The shown table as it was after the selected transaction, under a coloured read-only
/// marker; nothing here edits or calls.
pub fn past_rows(ui: &mut egui::Ui, point: &Point, table: &TableSchema, schema: &ModuleSchema) {
    ui.colored_label(
        PAST,
        egui::RichText::new(format!(
            "PAST STATE at tx {} (at {}) — read-only",
            point.seq, point.cause.time
        ))
        .strong(),
    );
    let rows = match &point.rows {
        Ok(rows) => rows,
        Err(why) => {
            ui.colored_label(crate::ui::HIGHLIGHT, why);
            return;
        }
    };
    ui.label(format!("{} row(s) then", rows.len()));
    let height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    egui::ScrollArea::both()
        .id_salt("past rows")
        .max_height(260.0)
        .show_rows(ui, height, rows.len(), |ui, range| {
            egui::Grid::new("past rows grid")
                .striped(true)
                .show(ui, |ui| {
                    for field in &table.fields {
                        ui.colored_label(PAST, &field.name);
                    }
                    ui.end_row();
                    for row in &rows[range] {
                        for (value, field) in row.iter().zip(&table.fields) {
                            ui.label(display(value, &field.ty, &schema.types));
                        }
                        ui.end_row();
                    }
                });
        });
}
