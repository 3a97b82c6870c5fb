//! Logging: a `tracing` subscriber writing one line per event to stderr. Keys and secrets are
//! never logged (requests are logged by path, without query values or auth headers).

/// Install the global subscriber with the filter from `server.log`.
pub fn init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
