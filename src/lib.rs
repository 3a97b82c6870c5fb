//! Refract: an on-the-fly image transformation edge server.
//!
//! See `ARCHITECTURE.md` for the module map and the path of a request.

pub mod access;
pub mod config;
pub mod control;
pub mod delivery;
pub mod error;
pub mod http;
pub mod library;
pub mod pipeline;
pub mod routes;
pub mod storage;
pub mod store;
pub mod util;
pub mod wiring;

/// Bind `cfg.server.listen` and serve until `shutdown` resolves. Returns the bound address
/// through `on_bound` (useful with port 0).
pub async fn run(
    config: config::Config,
    shutdown: impl std::future::Future<Output = ()>,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let (addr, sockets) = http::server::bind(&config.server.listen, num_cpus::get())
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    // The address actually bound (port 0 picks one): URLs built without a request use it.
    let mut config = config;
    config.server.listen = addr.to_string();
    let built = wiring::build(&config).await?;
    let swept = built
        .library
        .sweep_pending()
        .await
        .map_err(|e| format!("start-up sweep: {e}"))?;
    if swept > 0 {
        tracing::warn!(
            objects = swept,
            "removed objects left by interrupted uploads or deletes"
        );
    }
    let background = tokio::spawn(wiring::background(&built));
    let trim = tokio::spawn(wiring::trim_when_idle(
        built.cpu.clone(),
        built.delivery.clone(),
    ));
    on_bound(addr);
    let requests = built.routes.requests();
    let served = http::server::serve_all(sockets, built.routes, &config.server, requests, shutdown)
        .await
        .map_err(|e| e.to_string());
    background.abort();
    trim.abort();
    served
}
