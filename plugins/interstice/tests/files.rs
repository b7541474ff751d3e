//! The File authority: a module's own directory in the node's data directory, transactional
//! writes, and no way out of it.

mod common;

use common::*;
use interstice::StorageConfig;

fn text(app: &mut bevy::prelude::App, query_name: &str, arg: &str) -> String {
    query(app, "filer", query_name, (arg.to_string(),)).unwrap()
}

fn entries(app: &mut bevy::prelude::App, dir: &str) -> Vec<String> {
    query(app, "filer", "entries", (dir.to_string(),)).unwrap()
}

#[test]
fn the_holder_reads_writes_lists_and_deletes_inside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = persisting_node(StorageConfig::new(dir.path()), &["filer", "kitchen"]);
    call(
        &mut app,
        "filer",
        "save",
        ("notes/a.txt".to_string(), "alpha".to_string()),
    )
    .unwrap();
    call(
        &mut app,
        "filer",
        "save",
        ("top.txt".to_string(), "top".to_string()),
    )
    .unwrap();
    assert_eq!(text(&mut app, "load", "notes/a.txt"), "alpha");
    assert_eq!(entries(&mut app, ""), ["notes/", "top.txt"]);
    assert_eq!(entries(&mut app, "notes"), ["a.txt"]);
    // On disk, in the module's own directory.
    let file = dir.path().join("files/filer/notes/a.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "alpha");

    // A failed reducer writes nothing; reads inside a transaction see its own writes.
    assert!(
        call(
            &mut app,
            "filer",
            "save_then_fail",
            ("b.txt".to_string(), "no".to_string())
        )
        .is_err()
    );
    assert!(!dir.path().join("files/filer/b.txt").exists());
    call(
        &mut app,
        "filer",
        "save_and_check",
        ("c.txt".to_string(), "seen".to_string()),
    )
    .unwrap();
    call(&mut app, "filer", "remove", ("top.txt".to_string(),)).unwrap();
    assert!(!dir.path().join("files/filer/top.txt").exists());
    assert!(
        call(&mut app, "filer", "remove", ("top.txt".to_string(),)).is_err(),
        "already gone"
    );
    assert!(text(&mut app, "load", "top.txt").starts_with("error:"));
    let from_query = text(&mut app, "write_from_query", "q.txt");
    assert!(from_query.contains("queries cannot change"), "{from_query}");

    // Another module does not hold the authority.
    let refused: String = query(&mut app, "kitchen", "try_file", ()).unwrap();
    assert!(refused.contains("File authority"), "{refused}");
}

#[test]
fn paths_cannot_leave_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "secret").unwrap();
    let mut app = persisting_node(StorageConfig::new(dir.path()), &["filer"]);
    for path in [
        "../../secret.txt",
        "/etc/passwd",
        "./x",
        "a/../../b",
        "",
        "a//b/..",
    ] {
        let answer = text(&mut app, "load", path);
        assert!(answer.starts_with("error:"), "{path}: {answer}");
        assert!(
            call(
                &mut app,
                "filer",
                "save",
                (path.to_string(), "x".to_string())
            )
            .is_err(),
            "{path} was writable"
        );
    }
    // A symbolic link inside the directory that points out is not followed.
    let own = dir.path().join("files/filer");
    std::fs::create_dir_all(&own).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path(), own.join("escape")).unwrap();
        let answer = text(&mut app, "load", "escape/secret.txt");
        assert!(answer.contains("symbolic link"), "{answer}");
        assert!(
            call(
                &mut app,
                "filer",
                "save",
                ("escape/new.txt".to_string(), "x".to_string())
            )
            .is_err()
        );
        assert!(!dir.path().join("new.txt").exists());
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
}

#[test]
fn a_node_without_a_data_directory_has_no_files() {
    let mut app = app();
    load(&mut app, "filer").unwrap();
    assert!(text(&mut app, "load", "a.txt").contains("no data directory"));
}

#[test]
fn watched_paths_report_changes_from_outside_and_inside() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = persisting_node(StorageConfig::new(dir.path()), &["filer"]);
    call(&mut app, "filer", "watch", ("levels".to_string(),)).unwrap();
    app.update();
    let root = dir.path().join("files/filer");
    // Someone edits a level by hand; a file outside the watched folder changes too.
    std::fs::create_dir_all(root.join("levels")).unwrap();
    std::fs::write(root.join("levels/1.txt"), "###").unwrap();
    std::fs::write(root.join("other.txt"), "not watched").unwrap();
    let changes = |app: &mut bevy::prelude::App| -> Vec<String> {
        query(app, "filer", "changes", ()).unwrap()
    };
    let wait_for = |app: &mut bevy::prelude::App, wanted: &str| {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(10) {
            app.update();
            if changes(app).iter().any(|c| c == wanted) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no `{wanted}` in {:?}", changes(app));
    };
    wait_for(&mut app, "changed levels/1.txt");
    // The module's own committed write and delete are changes too.
    call(
        &mut app,
        "filer",
        "save",
        ("levels/2.txt".to_string(), "##".to_string()),
    )
    .unwrap();
    wait_for(&mut app, "changed levels/2.txt");
    call(&mut app, "filer", "remove", ("levels/1.txt".to_string(),)).unwrap();
    wait_for(&mut app, "removed levels/1.txt");
    assert!(
        changes(&mut app).iter().all(|c| !c.contains("other.txt")),
        "{:?}",
        changes(&mut app)
    );
}

#[test]
fn committed_writes_reach_the_disk_even_when_a_later_call_of_the_frame_traps() {
    // Writes wait for the frame's fsync; a trap in between replaces the module's instance,
    // which must not take the waiting writes with it.
    let dir = tempfile::tempdir().unwrap();
    let mut app = persisting_node(StorageConfig::new(dir.path()), &["filer"]);
    let ids = with_api(&mut app, |api| {
        [
            api.queue_reducer(
                "filer",
                "save_noted",
                ("first.txt".to_string(), "1".to_string()),
            )
            .unwrap(),
            api.queue_reducer("filer", "trap", ()).unwrap(),
            api.queue_reducer(
                "filer",
                "save_noted",
                ("second.txt".to_string(), "2".to_string()),
            )
            .unwrap(),
        ]
    });
    app.update();
    let messages = app
        .world()
        .resource::<bevy::prelude::Messages<interstice::ReducerOutcome>>();
    let mut cursor = messages.get_cursor();
    let outcomes: Vec<_> = cursor
        .read(messages)
        .filter(|o| ids.contains(&o.id))
        .map(|o| o.result.is_ok())
        .collect();
    assert_eq!(outcomes, [true, false, true]);
    let files = dir.path().join("files/filer");
    assert_eq!(
        std::fs::read_to_string(files.join("first.txt")).unwrap(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(files.join("second.txt")).unwrap(),
        "2"
    );
}
