//! `xenledger-replay`: the command line over [`xenledger_replay`]. Parses arguments, prints, and maps
//! the outcome to an exit code: 0 success, 1 verification failed, 2 the command could not run.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xenledger_replay::LogFilter;

#[derive(Parser)]
#[command(
    name = "xenledger-replay",
    version,
    about = "Audit and debug a xenledger data dir by folding its log with the server's engine",
    long_about = "Audit and debug a xenledger data dir by folding its log with the server's engine.\n\n\
                  Works on a stopped server's data dir (or a copy of a live one): while a server runs, \
                  redb holds an exclusive lock on DIR/xenledger.redb and opening it fails."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the whole hash chain from entry 1, fold every entry, and compare the fold with every
    /// retained checkpoint. Exits 1 naming the first bad entry.
    Verify { dir: PathBuf },
    /// One line per entry: seq, time, actor (user/originator/session), method, params, changes.
    Log {
        dir: PathBuf,
        /// Only entries changing an object of this class.
        #[arg(long)]
        class: Option<String>,
        /// Only entries changing (or pointing a field at) this object.
        #[arg(long = "ref", conflicts_with = "uuid")]
        reference: Option<String>,
        /// As --ref, for the object created with this uuid.
        #[arg(long)]
        uuid: Option<String>,
        /// Only entries by this user name, originator or session (`session:<uuid>`).
        #[arg(long)]
        actor: Option<String>,
        /// Only entries at or after this time (YYYY-MM-DDTHH:MM:SSZ or YYYYMMDDTHH:MM:SSZ).
        #[arg(long)]
        since: Option<String>,
        /// Only entries at or before this time (the whole second included).
        #[arg(long)]
        until: Option<String>,
        /// First seq to read.
        #[arg(long)]
        from: Option<u64>,
        /// Last seq to read.
        #[arg(long)]
        to: Option<u64>,
        /// One line per change, created objects with all their non-default fields.
        #[arg(long)]
        long: bool,
    },
    /// Print the objects as of entry SEQ as JSON: {"Class": {"OpaqueRef:…": {field: value}}}.
    State {
        dir: PathBuf,
        #[arg(long, value_name = "SEQ")]
        at: u64,
        /// Only this class.
        #[arg(long)]
        class: Option<String>,
        /// Fold from entry 1 instead of starting at the newest checkpoint before SEQ.
        #[arg(long)]
        no_checkpoint: bool,
    },
    /// Objects added, removed and fields changed from entry A to entry B (0 is the empty state).
    Diff {
        dir: PathBuf,
        a: u64,
        b: u64,
        /// Only this class.
        #[arg(long)]
        class: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        // `log | head` closes the pipe early; that is not a failure.
        Err(error) if error.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xenledger-replay: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.command {
        Command::Verify { dir } => {
            let outcome = xenledger_replay::verify(&dir)?;
            write!(out, "{outcome}")?;
            out.flush()?;
            if !outcome.is_ok() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Log { dir, class, reference, uuid, actor, since, until, from, to, long } => {
            let filter = LogFilter { class, reference, uuid, actor, since, until, from_seq: from, to_seq: to, long };
            // Flush what was printed before reporting an error part-way.
            let listed = xenledger_replay::log(&dir, &filter, &mut out);
            out.flush()?;
            listed?;
        }
        Command::State { dir, at, class, no_checkpoint } => {
            writeln!(out, "{}", xenledger_replay::state_json(&dir, at, class.as_deref(), !no_checkpoint)?)?;
        }
        Command::Diff { dir, a, b, class } => {
            write!(out, "{}", xenledger_replay::diff(&dir, a, b, class.as_deref())?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
