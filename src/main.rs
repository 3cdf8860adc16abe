//! The `xenledger` binary: everything is in `cli`.

/// mimalloc instead of glibc malloc: the server frees on one thread what another allocated
/// (records built by the writer, dropped by the committer and readers), where glibc's arenas
/// contend; measured 15–20% of server CPU in glibc malloc/free under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    xenledger::cli::run()
}
