//! What every CLI test uses: running the binary against a data directory, starting a node and
//! waiting until it listens, following a process's output, writing a small module crate.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("interstice")
}

/// Runs `interstice` with this data directory; returns (success, stdout, stderr).
pub(crate) fn cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    cli_in(Path::new("."), data, args)
}

/// [`cli`], run from the directory `cwd` (for relative paths, as a user types them).
pub(crate) fn cli_in(cwd: &Path, data: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(bin())
        .current_dir(cwd)
        .args(args)
        .env("INTERSTICE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        // Where `publish` builds modules: shared with the other tests' wasm builds.
        .env("CARGO_TARGET_DIR", env!("CARGO_TARGET_TMPDIR"))
        .timeout(Duration::from_secs(300))
        .output()
        .expect("running interstice");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn ok(data: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(data, args);
    assert!(
        success,
        "`interstice {}` failed:\n{out}\n{err}",
        args.join(" ")
    );
    out
}

pub(crate) fn fails(data: &Path, args: &[&str]) -> String {
    let (success, out, err) = cli(data, args);
    assert!(
        !success,
        "`interstice {}` should fail:\n{out}",
        args.join(" ")
    );
    err
}

pub(crate) fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `interstice node start <name>`, once it listens.
pub(crate) fn start(data: &Path, name: &str, log: &Path) -> Running {
    start_with(data, &[name], log)
}

/// `interstice node start <args>`, once it listens.
pub(crate) fn start_with(data: &Path, args: &[&str], log: &Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(bin())
        .args(["node", "start"])
        .args(args)
        .env("INTERSTICE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("starting the node");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("listening for peers")
    {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running(child)
}

pub(crate) fn fingerprint_of_cli(data: &Path) -> String {
    let cert = std::fs::read(data.join("cli").join("identity.cert.der")).unwrap();
    interstice_net::transport::fingerprint(&cert)
}

/// Lines a child process prints on stdout and stderr, as they come.
pub(crate) struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub(crate) fn of(child: &mut Child) -> Lines {
        let (sender, receiver) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Lines(receiver)
    }

    /// Waits for a line containing `text`; every line seen meanwhile.
    pub(crate) fn until(&self, text: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {within:?}; saw:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

/// A module crate written by hand from the README: no `interstice init`, no build profile.
pub(crate) fn handmade_crate(dir: &Path, lib: &str) {
    handmade_crate_named(dir, "handmade", lib);
}

/// [`handmade_crate`] with another package (and so module) name.
pub(crate) fn handmade_crate_named(dir: &Path, name: &str, lib: &str) {
    let sdk = concat!(env!("CARGO_MANIFEST_DIR"), "/../interstice-sdk");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\ninterstice-sdk = {{ path = \"{sdk}\" }}\n"
        ),
    )
    .unwrap();
    // What the README tells authors to add while the SDK needs Rust 1.99.1.
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.99.1\"\ntargets = [\"wasm32-unknown-unknown\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src").join("lib.rs"), lib).unwrap();
}
