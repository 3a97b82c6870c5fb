//! The listener: one event loop per core, each a single-threaded tokio runtime accepting from
//! the same listening socket (no task ever moves between threads, so a cache hit costs no
//! cross-thread wake-up). Each serves hyper 1 via hyper-util's auto
//! (HTTP/1.1 + h2c) connection builder, with a header-read timeout, a request id on every
//! response, one log line per request, and graceful shutdown (in-flight requests finish within
//! the grace period; new connections are refused). Image work still goes to the shared CPU pool.

use super::response::Body;
use http::{HeaderName, HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The request id's header, set on every answer (a constant: a name given as `&str` is parsed
/// on every use).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The `[server]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Data directory; originals default to `<data_dir>/images`.
    pub data_dir: PathBuf,
    /// Seconds to wait for a request's headers (slowloris guard).
    pub header_read_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/Ctrl-C.
    pub shutdown_grace_secs: u64,
    /// Most open client connections; more wait to be accepted.
    pub max_connections: usize,
    /// Log filter (`info`, `debug`, `refract=debug,info`, ...).
    pub log: String,
    /// Absolute base of the URLs the API returns (`https://img.example.com`); unset = from the
    /// request's `Host`.
    pub public_url: Option<String>,
    /// Peers (IPs or CIDRs) whose `CF-Connecting-IP` / `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            header_read_timeout_secs: 10,
            shutdown_grace_secs: 10,
            max_connections: 1024,
            log: "info".into(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Wait until the first bytes tell HTTP/1 from HTTP/2 (hyper-util's detection reads them with no
/// timer of its own): false when the client closed first.
async fn protocol_known(stream: &tokio::net::TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; 24];
    loop {
        match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n >= PREFACE.len() || buf[..n] != PREFACE[..n] => return true,
            // A prefix of the h2 preface so far: wait for more (the caller's deadline bounds it).
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// What answers each request (the route table). Errors are already responses here.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// The path as the access log may show it (a handler hides secrets carried in paths).
    fn loggable_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        path.into()
    }
}

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
/// `requests` counts every request served (it also numbers their ids).
pub async fn serve_all<H: Handler>(
    sockets: Vec<std::net::TcpListener>,
    handler: Arc<H>,
    cfg: &ServerConfig,
    requests: Arc<AtomicU64>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections.max(1)));
    let seq = requests;
    let mut done = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let (handler, slots, mut stop) = (handler.clone(), slots.clone(), stop_rx.clone());
        let (cfg, seq) = (cfg.clone(), seq.clone());
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
                            serve(listener, handler, &cfg, slots, seq, stopped).await
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
async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    cfg: &ServerConfig,
    slots: Arc<tokio::sync::Semaphore>,
    seq: Arc<AtomicU64>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs.max(1)));
    // h2: an idle connection is pinged, and closed when the ping is not answered.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(
            cfg.header_read_timeout_secs.max(1),
        )))
        .keep_alive_timeout(Duration::from_secs(cfg.header_read_timeout_secs.max(1)));
    let first_byte = Duration::from_secs(cfg.header_read_timeout_secs.max(1));
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
                let (handler, seq) = (handler.clone(), seq.clone());
                let svc = service_fn(move |req| {
                    let handler = handler.clone();
                    let id = (pid, seq.fetch_add(1, Ordering::Relaxed));
                    async move { Ok::<_, Infallible>(handle(&*handler, req, peer, id).await) }
                });
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    // A client that connects and sends nothing holds a slot: it gets the header
                    // timeout for its first byte too (the h1/h2 detection would wait forever).
                    if !tokio::time::timeout(first_byte, protocol_known(&stream))
                        .await
                        .unwrap_or(false)
                    {
                        drop(slot);
                        return;
                    }
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn.into_owned()).await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
    Ok(())
}

/// `<pid>-<sequence>` in hex, formatted without a `String`.
fn own_request_id(pid: u32, seq: u64) -> HeaderValue {
    fn hex(out: &mut Vec<u8>, v: u64) {
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
        }
    }
    let mut id = Vec::with_capacity(26);
    hex(&mut id, u64::from(pid));
    id.push(b'-');
    hex(&mut id, seq);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(id))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

async fn handle<H: Handler>(
    handler: &H,
    req: Request<Incoming>,
    peer: SocketAddr,
    (pid, seq): (u32, u64),
) -> Response<Body> {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| own_request_id(pid, seq));
    let logged = tracing::enabled!(tracing::Level::INFO);
    let method = req.method().clone();
    let uri = logged.then(|| req.uri().clone());
    // At `debug` every line logged while handling the request carries its id; at `info` the
    // request line does (a span per request halves the rate of cache hits: bench/RESULTS.md).
    let span = tracing::debug_span!("request", id = %request_id.to_str().unwrap_or("-"));
    let mut resp = tracing::Instrument::instrument(handler.handle(req, peer), span).await;
    if let Some(uri) = uri {
        crate::util::telemetry::request_line(
            request_id.to_str().unwrap_or("-"),
            method.as_str(),
            &handler.loggable_path(uri.path()),
            resp.status().as_u16(),
            resp.headers()
                .get(&X_CACHE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            start.elapsed().as_millis() as u64,
        );
    }
    resp.headers_mut().insert(REQUEST_ID, request_id);
    resp
}
