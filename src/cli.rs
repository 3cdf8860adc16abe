//! Command line: `serve` and local user management. The only place that reads argv and the
//! environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth;
use crate::engine::internal::{InternalOp, UserChange};
use crate::entry::Actor;
use crate::ledger::{Job, Ledger, LedgerError};
use crate::node::{FirstStart, Node};
use crate::rpc::NodeHandler;
use crate::server::{Server, ServerConfig, TlsSource};

/// Default data dir, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "./xenledger-data";
/// Default HTTPS listener.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8443";

#[derive(Parser)]
#[command(name = "xenledger", version, about = "A XenAPI-compatible management server")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default command).
    Serve(ServeArgs),
    /// Call a running server over JSON-RPC: logs in, calls METHOD(session, ARGS…), logs out.
    /// Each ARG is JSON if it parses as JSON, else a string. The password comes from
    /// XENLEDGER_PASSWORD.
    Call {
        /// The server's URL (JSON-RPC is posted to URL/jsonrpc).
        #[arg(long, default_value = "https://127.0.0.1:8443")]
        url: String,
        /// The user to log in as.
        #[arg(long, default_value = "root")]
        user: String,
        /// Accept the server's certificate without verifying it (the default one is self-signed).
        #[arg(long, short = 'k')]
        insecure: bool,
        /// Seconds one call may take.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The XenAPI method, e.g. `pool.get_all` or `VM.get_record`.
        method: String,
        /// The method's arguments after the session: JSON if they parse as JSON, else strings.
        args: Vec<String>,
    },
    /// Manage local users of a data dir (the server must not be running on it).
    User {
        #[command(subcommand)]
        command: UserCommand,
        /// The data dir whose users to manage.
        #[arg(long, default_value = DATA_DIR_DEFAULT, global = true)]
        data_dir: PathBuf,
    },
    /// xe, the XenServer command line, against a running server: `xenledger xe vm-list`, the
    /// same as the `xe` binary (`xe help` lists the commands).
    #[command(disable_help_flag = true)]
    Xe {
        /// xe's arguments: `[-s HOST] [-p PORT] [-u USER] [-pw PASS | -pwf FILE] COMMAND key=value…`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the bash completion for `xe` (install it as /etc/bash_completion.d/xe).
    XeCompletion,
    /// Manage the data dir's secret key (the server must not be running on it).
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
        /// The data dir whose key to manage.
        #[arg(long, default_value = DATA_DIR_DEFAULT, global = true)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Rotate the key secret values are sealed under: re-seal every live value under a new key,
    /// then retire the old one, so that values only the log still holds (destroyed secrets,
    /// replaced values) can no longer be opened.
    Rekey,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// The data dir: the log, the key file and the generated certificate (created if missing).
    #[arg(long, default_value = DATA_DIR_DEFAULT)]
    data_dir: PathBuf,
    /// HTTPS listener.
    #[arg(long, default_value = LISTEN_DEFAULT)]
    listen: String,
    /// Optional plain-HTTP listener (Ansible defaults to http://).
    #[arg(long)]
    http: Option<String>,
    /// Optional unix socket (HTTP; callers there are trusted as root, as with xapi's).
    #[arg(long)]
    unix: Option<PathBuf>,
    /// A PEM certificate chain to serve instead of the generated self-signed one.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How long the simulated hypervisor's effects take, as a multiple of a real host's (a VM
    /// start about 2 s at 1.0); 0 makes them instant.
    #[arg(long, default_value_t = 1.0)]
    sim_speed: f64,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password comes from XENLEDGER_PASSWORD or the first line of stdin.
    Add {
        /// The new user's name.
        name: String,
        /// One of xapi's roles: pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator,
        /// read-only.
        #[arg(long)]
        role: String,
    },
    /// Change a user's password (XENLEDGER_PASSWORD or stdin).
    Passwd { name: String },
    /// Remove a user.
    Del { name: String },
    /// List users and roles.
    List,
}

pub fn run() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        None => {
            serve(ServeArgs { data_dir: DATA_DIR_DEFAULT.into(), listen: LISTEN_DEFAULT.into(), ..Default::default() })
        }
        Some(Command::Serve(a)) => serve(a),
        Some(Command::User { command, data_dir }) => user(&data_dir, command),
        Some(Command::Secret { command: SecretCommand::Rekey, data_dir }) => rekey(&data_dir),
        Some(Command::Call { url, user, insecure, timeout, method, args }) => {
            call(url, user, insecure, timeout, method, args)
        }
        Some(Command::Xe { args }) => return crate::xe::main(&args),
        Some(Command::XeCompletion) => {
            print!("{}", crate::xe::completion::bash(&crate::xe::table::table()));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenledger: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn call(
    url: String,
    user: String,
    insecure: bool,
    timeout: u64,
    method: String,
    args: Vec<String>,
) -> anyhow::Result<()> {
    let password = std::env::var("XENLEDGER_PASSWORD").map_err(|_| {
        anyhow::anyhow!("set XENLEDGER_PASSWORD to {user}'s password (the server's first start printed root's)")
    })?;
    let call =
        crate::remote::CallArgs { url, user, password, insecure, timeout: Duration::from_secs(timeout), method, args };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(crate::remote::call(&call)) {
        Ok(value) => {
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
        Err(e) => anyhow::bail!("{e}"),
    }
}

fn init_tracing() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn parse_addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().map_err(|e| anyhow::anyhow!("bad address {text:?}: {e}"))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let first = FirstStart {
        root_password: std::env::var("XENLEDGER_ROOT_PASSWORD").ok().filter(|p| !p.is_empty()),
        hostname: hostname(),
        address: "127.0.0.1".into(),
    };
    let config = ServerConfig {
        https: Some(parse_addr(&args.listen)?),
        http: args.http.as_deref().map(parse_addr).transpose()?,
        unix: args.unix.clone(),
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            _ => TlsSource::SelfSigned { dir: args.data_dir.clone() },
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let node = runtime.block_on(async {
        // The listeners first: a start that cannot bind (a port in use) creates and logs nothing,
        // so a first start that fails never leaves a root whose generated password nobody saw.
        let server = Server::bind(config).await?;
        let dir = args.data_dir.clone();
        let first_for_open = first.clone();
        let speed = args.sim_speed;
        let (node, generated) = tokio::task::spawn_blocking(move || {
            let ledger = crate::ledger::Ledger::open(&dir)?;
            let backend = crate::node::operations::Backend { host: crate::node::default_host(&ledger), speed };
            Node::start_with(ledger, &first_for_open, backend)
        })
            .await?
            .map_err(|e| data_dir_error(&args.data_dir, e))?;
        let report = node.ledger.open_report().clone();
        eprintln!(
            "xenledger: data dir {} (checkpoint at entry {}, {} entries replayed, log at {})",
            args.data_dir.display(),
            report.checkpoint_seq,
            report.tail_entries,
            report.last_seq
        );
        if let Some(addr) = server.https_addr() {
            eprintln!("xenledger: listening on https://{addr}/ (XML-RPC at /, JSON-RPC at /jsonrpc)");
        }
        if let Some(addr) = server.http_addr() {
            eprintln!("xenledger: listening on http://{addr}/");
        }
        if let Some(path) = &args.unix {
            eprintln!("xenledger: listening on unix socket {}", path.display());
        }
        if let Some(fp) = crate::server::certificate_fingerprint_sha256(&args.data_dir) {
            eprintln!("xenledger: TLS certificate SHA-256 fingerprint {fp}");
        }
        match &generated {
            Some(p) => eprintln!("xenledger: first start: log in as user 'root' with password '{p}' (shown once; set XENLEDGER_ROOT_PASSWORD to choose it)"),
            None if first.root_password.is_some() && !node.first_start => eprintln!(
                "xenledger: warning: XENLEDGER_ROOT_PASSWORD is read only on the first start and is ignored now; \
                 to change root's password, stop the server and run `xenledger user passwd root --data-dir {}`",
                args.data_dir.display()
            ),
            None => eprintln!("xenledger: log in as 'root' (or another user added with `xenledger user add`)"),
        }
        let gc_node = node.clone();
        let gc = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Err(e) = crate::node::collect_garbage(&gc_node).await {
                    tracing::warn!("session gc: {e}");
                }
                if let Err(e) = crate::node::tasks::collect_tasks(&gc_node).await {
                    tracing::warn!("task gc: {e}");
                }
            }
        });
        let handler = Arc::new(NodeHandler { node: node.clone() });
        server.serve(handler, shutdown_signal()).await?;
        gc.abort();
        anyhow::Ok(node)
    })?;
    // Every connection is closed; write the final checkpoint.
    let seq = node.ledger.checkpoint().map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("xenledger: stopped cleanly (checkpoint at entry {seq})");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("xenledger: shutting down: finishing in-flight calls");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("XENLEDGER_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!p.is_empty(), "no password: set XENLEDGER_PASSWORD or give it on stdin");
    Ok(p)
}

fn rekey(dir: &Path) -> anyhow::Result<()> {
    let ledger = Ledger::open(dir).map_err(|e| data_dir_error(dir, e))?;
    let done = crate::ledger::rekey(&ledger)?;
    ledger.close();
    println!(
        "secret rekey: {} secret value(s) re-sealed under key {} (log entry {}); the older keys are retired",
        done.secrets, done.key_id, done.seq
    );
    Ok(())
}

/// A data dir that cannot be opened, in the operator's words: a lock held by a running server
/// says so and what to do.
fn data_dir_error(dir: &Path, error: LedgerError) -> anyhow::Error {
    if matches!(&error, LedgerError::Store(e) if e.is_locked()) {
        anyhow::anyhow!(
            "the data dir {} is in use by another process (a running xenledger server?): stop it first, \
             or work on a copy of the dir",
            dir.display()
        )
    } else {
        anyhow::Error::new(error).context(format!("opening the data dir {}", dir.display()))
    }
}

fn user(dir: &Path, command: UserCommand) -> anyhow::Result<()> {
    let ledger = Ledger::open(dir).map_err(|e| data_dir_error(dir, e))?;
    let actor = Actor { session: String::new(), user: "cli".into(), originator: "xenledger user".into() };
    let state = ledger.snapshot();
    let op = match command {
        UserCommand::List => {
            for (name, u) in state.users.iter() {
                println!("{name}\t{}", u.role);
            }
            return Ok(());
        }
        UserCommand::Add { name, role } => {
            anyhow::ensure!(auth::is_role(&role), "unknown role {role:?}; roles are {}", auth::ROLES.join(", "));
            anyhow::ensure!(!state.users.contains_key(&name), "user {name:?} exists");
            anyhow::ensure!(!name.is_empty(), "empty user name");
            let phc = auth::hash_password(&read_password()?);
            InternalOp::UserPut { name, role, password_hash: phc, why: UserChange::Add }
        }
        UserCommand::Passwd { name } => {
            let user = state.users.get(&name).ok_or_else(|| anyhow::anyhow!("no user {name:?}"))?;
            let phc = auth::hash_password(&read_password()?);
            InternalOp::UserPut { name, role: user.role.clone(), password_hash: phc, why: UserChange::Passwd }
        }
        UserCommand::Del { name } => {
            anyhow::ensure!(state.users.contains_key(&name), "no user {name:?}");
            anyhow::ensure!(name != auth::ROOT, "root cannot be removed");
            InternalOp::UserDelete { name }
        }
    };
    let name = match &op {
        InternalOp::UserPut { name, .. } | InternalOp::UserDelete { name } => name.clone(),
        _ => unreachable!("a user command"),
    };
    let method = op.method();
    let job = Job::internal(actor, op);
    let (_, seq) = ledger.call_blocking(job).map_err(|e| anyhow::anyhow!("{e}"))?;
    ledger.close();
    println!("{method} {name}: done (log entry {seq})");
    Ok(())
}
