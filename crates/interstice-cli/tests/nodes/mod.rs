//! Shared by the end-to-end tests that run `interstice example` node processes.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A UDP port nothing listens on now.
pub fn free_port() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().expect("its address")
}

/// Starts `interstice <args> --data-dir <data>`, its output in `log`.
pub fn start(args: &[&str], data: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(assert_cmd::cargo::cargo_bin("interstice"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting interstice")
}

/// `received greeting #<id>: <greeting>` lines of a caller's log, in order.
pub fn received(log: &Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let rest = line.split("received greeting #").nth(1)?;
            let (id, greeting) = rest.split_once(": ")?;
            let greeting = greeting.split(" module=").next()?.trim().to_string();
            Some((id.parse().ok()?, greeting))
        })
        .collect()
}

/// Node processes, killed when dropped.
pub struct Nodes(pub Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
