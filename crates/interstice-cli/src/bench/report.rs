//! The final report of a run: lines for people, or one JSON object (`--json`).

use super::runner::Outcome;
use serde_json::{Value, json};

/// A figure of the report: its label for people, its key in JSON, its value.
pub struct Line {
    label: &'static str,
    key: &'static str,
    value: Value,
    text: String,
}

impl Line {
    /// A line showing `value` as `text`.
    pub fn new(label: &'static str, key: &'static str, value: Value, text: String) -> Line {
        Line {
            label,
            key,
            value,
            text,
        }
    }

    /// A line showing `value` as it is.
    pub fn plain(label: &'static str, key: &'static str, value: impl Into<Value>) -> Line {
        let value = value.into();
        let text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Line::new(label, key, value, text)
    }
}

/// The lines every run has: throughput, outcomes and latency.
pub fn outcome_lines(outcome: &Outcome) -> Vec<Line> {
    let micros = |q: f64| outcome.latency.quantile(q);
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    vec![
        Line::new(
            "committed per second",
            "committed_per_second",
            json!(outcome.committed_per_second().round()),
            format!("{:.0}", outcome.committed_per_second()),
        ),
        Line::new(
            "measured for",
            "seconds",
            json!(outcome.seconds),
            format!("{:.2} s", outcome.seconds),
        ),
        Line::plain("committed", "committed", outcome.committed),
        Line::plain("aborted", "aborted", outcome.aborted),
        Line::plain("busy (nothing ran)", "busy", outcome.busy),
        Line::plain("failed", "failed", outcome.failed),
        Line::plain("answers timed", "latency_samples", outcome.latency.count()),
        Line::new(
            "latency p50",
            "latency_p50_us",
            json!(micros(0.5)),
            ms(micros(0.5)),
        ),
        Line::new(
            "latency p99",
            "latency_p99_us",
            json!(micros(0.99)),
            ms(micros(0.99)),
        ),
        Line::new(
            "latency p99.9",
            "latency_p999_us",
            json!(micros(0.999)),
            ms(micros(0.999)),
        ),
        Line::new(
            "latency max",
            "latency_max_us",
            json!(outcome.latency.max()),
            ms(outcome.latency.max()),
        ),
    ]
}

/// Prints `lines` under `title`, or as one JSON object.
pub fn print(title: &str, lines: &[Line], as_json: bool) {
    if as_json {
        let object: serde_json::Map<String, Value> = lines
            .iter()
            .map(|l| (l.key.to_string(), l.value.clone()))
            .collect();
        println!("{}", Value::Object(object));
        return;
    }
    println!("{title}");
    let width = lines.iter().map(|l| l.label.len()).max().unwrap_or(0);
    for line in lines {
        println!("  {:width$}  {}", line.label, line.text);
    }
}
