//! The `xenledger` binary: everything is in `cli`.

fn main() -> std::process::ExitCode {
    xenledger::cli::run()
}
