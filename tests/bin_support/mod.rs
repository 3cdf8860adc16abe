//! Shared helpers for the tests that drive the real `xenledger` binary (`cli_call`, `first_run`):
//! its path, a free port, and a guard that kills a server process when the test ends.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Child;

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
