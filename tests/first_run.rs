//! A first run that cannot go wrong, with the real binary: a first start that cannot bind its
//! port creates nothing (no root whose generated password nobody saw), so the next start still
//! generates and prints it; its error names the address once; `XENLEDGER_ROOT_PASSWORD` on a
//! later start is not silently ignored; a second process on a data dir in use says what to do.

mod bin_support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bin_support::{free_port, Server, BIN};

fn serve(dir: &std::path::Path, port: u16, root_password: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    command.args(["serve", "--data-dir"]).arg(dir).args(["--listen", &format!("127.0.0.1:{port}")]);
    command.env_remove("XENLEDGER_ROOT_PASSWORD");
    if let Some(p) = root_password {
        command.env("XENLEDGER_ROOT_PASSWORD", p);
    }
    command
}

/// Starts a server and returns it with everything it printed up to its login line.
fn start(dir: &std::path::Path, port: u16, root_password: Option<&str>) -> (Server, String) {
    let log = dir.with_extension(format!("{port}.log"));
    let child = serve(dir, port, root_password)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("log in as") || text.contains("XENLEDGER_ROOT_PASSWORD is read only") {
            return (server, text);
        }
        assert!(Instant::now() < deadline, "the server did not start: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_failed_first_start_loses_nothing_and_later_starts_say_what_they_ignore() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    // The port is taken: the start fails, naming the address and its cause once.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = serve(&dir, port, None).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("xenledger: cannot listen")).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line.matches("Address already in use").count(), 1, "{line}");
    assert!(!dir.join("xenledger.redb").exists(), "a start that could not bind created the log");
    drop(taken);

    // The next start is the first start: it generates root's password and prints it.
    let port = free_port();
    let (server, text) = start(&dir, port, None);
    assert!(text.contains("first start: log in as user 'root' with password '"), "{text}");
    // A second process on the same data dir is told why it cannot open it.
    let out = Command::new(BIN).args(["user", "list", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another process") && err.contains("stop it first"), "{err}");
    drop(server);

    // A later start with XENLEDGER_ROOT_PASSWORD set warns that it is ignored.
    let (_server, text) = start(&dir, free_port(), Some("new-password"));
    assert!(text.contains("XENLEDGER_ROOT_PASSWORD is read only on the first start"), "{text}");
    assert!(text.contains("user passwd root"), "{text}");
}
