//! The `xe` binary: the XenServer command line against a xenledger server (`src/xe/`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    xenledger::xe::main(&args)
}
