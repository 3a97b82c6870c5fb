//! The `refract` binary: parse the command line, load config, serve until a signal.

use clap::{Args, Parser, Subcommand};
use refract::config::{CliOverrides, Config};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "refract",
    version,
    about = "On-the-fly image transformation edge server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve(ServeArgs),
    /// Print a signed URL for `/img/...?...` using the configured signing keys (the first signs).
    Sign {
        /// Path and query (`/img/cat.jpg?w=300`), or a full URL.
        target: String,
        /// Also expire the URL this many seconds from now.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Manage user accounts (a password is read from standard input, one line).
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user; its password is one line on standard input (12+ characters).
    Create {
        #[arg(long)]
        email: String,
        /// `admin` (every tenant) or `member` (of --tenant, with --scopes).
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Disable a user: no login, and every session ends at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// TOML config file (default: config/refract.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Data directory (originals in <dir>/images).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Folder of originals (overrides <data-dir>/images).
    #[arg(long, global = true)]
    storage_root: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    // Before any thread exists: two malloc arenas instead of eight per core (see the crate).
    refract_malloc_tune::limit_arenas(2);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(serve_or_sign()),
        Err(e) => {
            eprintln!("refract: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve_or_sign() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut user = None;
    let (args, sign) = match cli.command {
        Some(Command::Serve(a)) => (a, None),
        Some(Command::Sign { target, expires_in }) => (cli.serve, Some((target, expires_in))),
        Some(Command::User { action }) => {
            user = Some(action);
            (cli.serve, None)
        }
        None => (cli.serve, None),
    };
    let overrides = CliOverrides {
        config: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        storage_root: args.storage_root,
    };
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("refract: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(action) = user {
        return match user_command(&config, action).await {
            Ok(done) => {
                println!("{done}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("refract user: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    if let Some((target, expires_in)) = sign {
        return match sign_url(&config, &target, expires_in) {
            Ok(url) => {
                println!("{url}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("refract sign: {e}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let _log = refract::util::telemetry::init(&config.server.log);
    let result = refract::run(config, shutdown_signal(), |addr| {
        tracing::info!(%addr, "refract listening; try http://{addr}/img/rocket.jpg?w=400");
    })
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refract: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `refract user …`: the password of `create` is one line of standard input (never an argument,
/// which `ps` would show).
async fn user_command(config: &Config, cmd: UserCmd) -> Result<String, String> {
    use refract::wiring::UserAction;
    let action = match cmd {
        UserCmd::Create {
            email,
            role,
            tenant,
            scopes,
            name,
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password: {e}"))?;
            UserAction::Create {
                email,
                password: line.trim_end_matches(['\r', '\n']).to_string(),
                role,
                tenant,
                scopes: scopes
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                name,
            }
        }
        UserCmd::Disable { email } => UserAction::SetDisabled {
            email,
            disabled: true,
        },
        UserCmd::Enable { email } => UserAction::SetDisabled {
            email,
            disabled: false,
        },
    };
    refract::wiring::user_command(config, action).await
}

/// `refract sign`: the same signer the server verifies with.
fn sign_url(config: &Config, target: &str, expires_in: Option<u64>) -> Result<String, String> {
    let signer = refract::delivery::signing::Signer::new(&config.security);
    if !signer.can_sign() {
        return Err(
            "no signing key: set security.signing_keys (REFRACT__SECURITY__SIGNING_KEYS)".into(),
        );
    }
    // A full URL keeps its origin; only the path and query are signed.
    let (origin, rest) = match target.find("://") {
        Some(i) => {
            let after = &target[i + 3..];
            let slash = after.find('/').map_or(target.len(), |j| i + 3 + j);
            target.split_at(slash)
        }
        None => ("", target),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !path.starts_with('/') {
        return Err(format!("not a path: {path}"));
    }
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("s=") && !p.starts_with("expires="))
        .map(str::to_string)
        .collect();
    if let Some(secs) = expires_in {
        let now = refract::util::clock::now_secs();
        pairs.push(format!("expires={}", now + secs));
    }
    let signed = signer
        .sign(path, &pairs.join("&"))
        .ok_or("no signing key")?;
    Ok(format!("{origin}{signed}"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
