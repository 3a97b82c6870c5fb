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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
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
    refract::telemetry::init(&config.server.log);
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
