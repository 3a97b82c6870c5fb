//! The listener: one event loop per core, each a single-threaded tokio runtime accepting from
//! the same listening socket (no task ever moves between threads, so a cache hit costs no
//! cross-thread wake-up). Each serves hyper 1 via hyper-util's auto
//! (HTTP/1.1 + h2c) connection builder, with a header-read timeout, a request id on every
//! response, one log line per request, and graceful shutdown (in-flight requests finish within
//! the grace period; new connections are refused). Image work still goes to the shared CPU pool.

use super::response::{self, Body};
use super::router::{route, Route};
use crate::app::App;
use crate::error::Error;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Bind `addr` once (an address in use is an error, as it should be) and hand out `n` handles
/// of that one listening socket, one per event loop; each loop accepts from it.
pub fn bind(addr: &str, n: usize) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let mut handles = Vec::with_capacity(n.max(1));
    for _ in 1..n.max(1) {
        handles.push(listener.try_clone()?);
    }
    handles.push(listener);
    Ok((bound, handles))
}

/// Serve every listener handle on its own thread and single-threaded runtime until `shutdown`
/// resolves; returns when all have drained.
pub async fn serve_all(
    sockets: Vec<std::net::TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(
        app.config.server.max_connections.max(1),
    ));
    let mut done = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let (app, slots, mut stop) = (app.clone(), slots.clone(), stop_rx.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
        std::thread::Builder::new()
            .name(format!("refract-io-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            let listener = TcpListener::from_std(socket)?;
                            let stopped = async move {
                                let _ = stop.wait_for(|s| *s).await;
                            };
                            serve(listener, app, slots, stopped).await
                        })
                    });
                let _ = tx.send(result);
            })?;
        done.push(rx);
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for rx in done {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(std::io::Error::other("an event loop thread panicked")),
        }
    }
    result
}

/// Serve on `listener` until `shutdown` resolves, then drain for `shutdown_grace_secs`.
/// `slots` bounds the connections of every listener together.
async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    slots: Arc<tokio::sync::Semaphore>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            app.config.server.header_read_timeout_secs.max(1),
        ));
    let graceful = GracefulShutdown::new();
    // Request ids are `<pid>-<sequence>`; the pid is read once (getpid is a syscall).
    let pid = std::process::id();
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, stop accepting (the kernel backlog holds the rest).
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    let id = (pid, app.metrics.requests.fetch_add(1, Ordering::Relaxed));
                    async move { Ok::<_, Infallible>(handle(&app, req, peer, id).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(app.config.server.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
    Ok(())
}

async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    (pid, seq): (u32, u64),
) -> Response<Body> {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("{pid:x}-{seq:x}"), str::to_string);
    let head = req.method() == http::Method::HEAD;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = match route(&method, &path) {
        Route::Health => Ok(response::json(
            StatusCode::OK,
            &json!({"status": "ok"}),
            "no-store",
        )),
        Route::Version => Ok(response::json(
            StatusCode::OK,
            &json!({"name": "refract", "version": env!("CARGO_PKG_VERSION")}),
            "no-store",
        )),
        Route::Metrics => Ok(response::text(metrics(app))),
        Route::Image { raw_key } => crate::delivery::img::handle(app, &req, raw_key, peer).await,
        Route::Api => Ok(crate::control::handle(app, req, peer, false).await),
        Route::Random => Ok(crate::control::handle(app, req, peer, true).await),
        Route::NotFound => Err(Error::NotFound("no such route".into())),
        Route::MethodNotAllowed => Err(Error::MethodNotAllowed { allow: "GET, HEAD" }),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(request_id, error = ?e, "request failed");
            }
            response::error(&e, head)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id,
        method = %method,
        path = path,
        status = resp.status().as_u16(),
        cache = resp.headers().get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("-"),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

fn metrics(app: &App) -> String {
    let (hits, misses) = app.cache.counters();
    format!(
        "# TYPE refract_requests_total counter\nrefract_requests_total {}\n\
         # TYPE refract_transforms_total counter\nrefract_transforms_total {}\n\
         # TYPE refract_cache_hits_total counter\nrefract_cache_hits_total {hits}\n\
         # TYPE refract_cache_misses_total counter\nrefract_cache_misses_total {misses}\n\
         # TYPE refract_cpu_waiting gauge\nrefract_cpu_waiting {}\n\
         # TYPE refract_cpu_running gauge\nrefract_cpu_running {}\n\
         # TYPE refract_persistent_cache_bytes gauge\nrefract_persistent_cache_bytes {}\n",
        app.metrics.requests.load(Ordering::Relaxed),
        app.metrics.transforms.load(Ordering::Relaxed),
        app.cpu.waiting(),
        app.cpu.running(),
        app.persist
            .as_ref()
            .map_or(0, crate::delivery::persist::Persist::bytes),
    )
}
