//! Shared helpers for the tests that drive the real `xenledger` binary (`cli_call`, `first_run`):
//! its path, a free port, and a guard that kills a server process when the test ends.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_xenledger");

/// A running `xenledger serve`, killed and reaped on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `xenledger serve` on a free port with root's password `pw` and `extra` options, and
/// waits until it listens.
pub fn serve(dir: &Path, extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let child = Command::new(BIN)
        .arg("serve")
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("XENLEDGER_ROOT_PASSWORD", "pw")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Server(child), port)
}
