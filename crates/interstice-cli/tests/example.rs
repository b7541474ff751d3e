//! End-to-end: the real `interstice` binary runs the hello example.

use assert_cmd::Command;

#[test]
fn example_hello_loads_calls_and_queries() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = Command::cargo_bin("interstice")
        .expect("the interstice binary")
        .args([
            "example",
            "hello",
            "--frames",
            "10",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("running interstice");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = format!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "exit status {:?}\n{log}",
        output.status
    );
    for expected in [
        "module `hello` 0.1.0: tables [greetings], reducers [hello, init], queries [greeting_count, greetings_for]",
        "hello module initialised",
        "greeting #3 stored: Hello, Interstice!",
        "invocation 2 hello.hello committed",
        "query greeting_count() = 3",
        "query greetings_for(\"World\") = [\"Hello, World!\"]",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
}

#[test]
fn the_graphics_example_without_a_display_fails_clearly() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = Command::cargo_bin("interstice")
        .expect("the interstice binary")
        .args(["example", "graphics", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("running interstice");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no display") && stderr.contains("xvfb-run"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_examples_are_rejected_with_the_list() {
    let output = Command::cargo_bin("interstice")
        .expect("the interstice binary")
        .args(["example", "nope"])
        .output()
        .expect("running interstice");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("hello") && stderr.contains("caller"),
        "{stderr}"
    );
}
