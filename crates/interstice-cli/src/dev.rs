//! `interstice dev`: the author's loop. Watches a module crate; on every save rebuilds it for
//! wasm and publishes it to a node (an upgrade in place, keeping the data, or a refusal that
//! says why), and prints the module's log lines as they come.

use crate::calls::{build_module, print_verdict, upload_over};
use crate::client::Session;
use crate::home::{CliError, Home};
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long the sources must stay untouched before a rebuild: an editor saving several files
/// (or writing one in steps) causes one build, not several.
pub const SETTLE: Duration = Duration::from_millis(40);

/// Whether a changed path is a source a rebuild depends on: Rust sources, manifests and
/// bindings, not the build's own output or an editor's scratch files.
fn is_source(path: &Path, project: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(project) else {
        return false;
    };
    if relative.starts_with("target") {
        return false;
    }
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("rs" | "toml")
    )
}

/// Blocks until a source changes, then until sources have been quiet for [`SETTLE`]; when
/// the first change happened.
fn next_change(events: &Events, project: &Path) -> Result<Instant, CliError> {
    let relevant = |event: &notify::Event| {
        matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event.paths.iter().any(|p| is_source(p, project))
    };
    let stopped = || CliError::Other("the file watcher stopped".into());
    let first = loop {
        match events.recv().map_err(|_| stopped())? {
            (at, Ok(event)) if relevant(&event) => break at,
            (_, Ok(_)) => {}
            (_, Err(e)) => eprintln!("watching: {e}"),
        }
    };
    let mut quiet_since = Instant::now();
    loop {
        let left = SETTLE.saturating_sub(quiet_since.elapsed());
        match events.recv_timeout(left) {
            Ok((_, Ok(event))) if relevant(&event) => quiet_since = Instant::now(),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return Ok(first),
            Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
        }
    }
}

/// What the watcher sends: when, and what happened.
type Events = Receiver<(Instant, notify::Result<notify::Event>)>;

/// `interstice dev <node> [path]`: publishes the crate at `project`, then again after every
/// save, until Ctrl-C.
pub fn dev(home: &Home, node: &str, project: &Path, drop_data: bool) -> Result<(), CliError> {
    let entry = home.node(node)?;
    let project = project.canonicalize().map_err(|source| CliError::File {
        path: project.to_path_buf(),
        source,
    })?;
    let (sender, events) = channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        // Stamped as it happens: a save made during a build is timed from the save.
        let _ = sender.send((Instant::now(), event));
    })
    .map_err(|e| CliError::Other(format!("cannot watch {}: {e}", project.display())))?;
    // The crate's directory itself (its manifest and build script, even when an editor
    // replaces them) and its sources, not `target/`: a build writing there, or an editor's
    // checker running one, is no reason to rebuild.
    let watch = |watcher: &mut notify::RecommendedWatcher, path: &Path, mode| {
        watcher
            .watch(path, mode)
            .map_err(|e| CliError::Other(format!("cannot watch {}: {e}", path.display())))
    };
    watch(&mut watcher, &project, RecursiveMode::NonRecursive)?;
    if project.join("src").is_dir() {
        watch(&mut watcher, &project.join("src"), RecursiveMode::Recursive)?;
    }
    println!(
        "watching {}: every save is built and published to `{}` (Ctrl-C to stop)",
        project.display(),
        entry.name
    );
    let mut session = Session::new(home, &entry)?;
    let following = Arc::new(AtomicBool::new(false));
    let mut saved = Instant::now();
    loop {
        let built = build_module(&project).and_then(|(_, wasm)| {
            let build_time = saved.elapsed();
            session
                .run(|peer| upload_over(peer, wasm.clone(), drop_data))
                .map(|published| (published, build_time))
        });
        match built {
            Ok((published, build_time)) => {
                print_verdict(&published, &entry.name);
                println!(
                    "live {:.2} s after the save (build {:.2} s)",
                    saved.elapsed().as_secs_f64(),
                    build_time.as_secs_f64()
                );
                if !following.swap(true, Ordering::SeqCst) {
                    follow_logs(home, &entry.name, &published.module, following.clone());
                }
            }
            Err(CliError::Build(e)) => {
                eprintln!("not published: {e}\nwaiting for the next save...");
            }
            Err(e) => {
                eprintln!("not published: {e}\nwaiting for the next save...");
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        saved = next_change(&events, &project)?;
    }
}

/// Prints the module's new log lines on a thread of their own; `following` is cleared when
/// that stops (the node went away), so the next publish starts it again.
fn follow_logs(home: &Home, node: &str, module: &str, following: Arc<AtomicBool>) {
    let (home, node, module) = (home.clone(), node.to_string(), module.to_string());
    std::thread::spawn(move || {
        if let Err(e) = crate::logs::follow_new(&home, &node, &module) {
            eprintln!("stopped following the log of `{module}`: {e}");
        }
        following.store(false, Ordering::SeqCst);
    });
}
