//! End-to-end: the real `interstice` binary managing nodes, publishing, calling and querying
//! against a real node process over UDP on 127.0.0.1 — the failures included.

mod authoring;
mod bench;
mod nodes;
mod replay;
mod support;
mod tables;
