//! Logging: a `tracing` subscriber writing one line per event to stderr. Keys and secrets are
//! never logged (requests are logged by path, without query values or auth headers).
//!
//! A request never waits on stderr: each formatted line is appended, whole, to a shared buffer
//! (one short lock), and a thread of its own writes the buffer out every 25 ms, or sooner once
//! it holds 256 KiB. Lines stay whole and in the order they were logged; nothing wakes the
//! writer per line. When stderr is blocked and the buffer reaches 16 MiB, new lines are dropped
//! (never requests) and counted: `refract_log_lines_dropped_total` in `/metrics`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

const FLUSH_EVERY: Duration = Duration::from_millis(25);
const WAKE_AT: usize = 256 << 10;
const MAX_BUFFERED: usize = 16 << 20;

struct Shared {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    stop: AtomicBool,
    dropped: AtomicU64,
}

static DROPPED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The writer of one event's line(s): appends to the shared buffer.
pub struct LineWriter(Arc<Shared>);

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let Ok(mut buf) = self.0.buf.lock() else {
            return Ok(line.len());
        };
        if buf.len() + line.len() > MAX_BUFFERED {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            buf.extend_from_slice(line);
            if buf.len() >= WAKE_AT {
                self.0.wake.notify_one();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone)]
struct Maker(Arc<Shared>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Maker {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self.0.clone())
    }
}

/// Keeps the log writer running; dropping it writes out what is buffered and stops it.
pub struct LogGuard(Option<(Arc<Shared>, std::thread::JoinHandle<()>)>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some((shared, thread)) = self.0.take() {
            shared.stop.store(true, Ordering::Relaxed);
            shared.wake.notify_one();
            let _ = thread.join();
        }
    }
}

fn write_out(shared: &Shared) {
    // stderr is locked per batch, not for the thread's life: an `eprintln!` elsewhere (a
    // startup message, a debugging line) must not wait for ever.
    let out = std::io::stderr();
    let mut spare = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        let batch = match shared.buf.lock() {
            Ok(buf) => {
                let mut buf = if buf.len() < WAKE_AT && !stopping {
                    match shared.wake.wait_timeout(buf, FLUSH_EVERY) {
                        Ok((b, _)) => b,
                        Err(_) => return,
                    }
                } else {
                    buf
                };
                spare.clear();
                std::mem::swap(&mut *buf, &mut spare);
                std::mem::take(&mut spare)
            }
            Err(_) => return,
        };
        if !batch.is_empty() {
            let mut out = out.lock();
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
        spare = batch;
        if stopping {
            return;
        }
    }
}

/// Install the global subscriber with the filter from `server.log`. Keep the guard until exit.
pub fn init(filter: &str) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let shared = Arc::new(Shared {
        buf: Mutex::new(Vec::with_capacity(WAKE_AT * 2)),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
    });
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Maker(shared.clone()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .is_ok();
    if !installed {
        return LogGuard(None);
    }
    let _ = DROPPED.set(shared.clone());
    let writer = shared.clone();
    match std::thread::Builder::new()
        .name("refract-log".into())
        .spawn(move || write_out(&writer))
    {
        Ok(thread) => LogGuard(Some((shared, thread))),
        Err(_) => LogGuard(None),
    }
}

/// The per-request line, in the format of the subscriber's other lines, written straight into
/// the buffer (the hot path skips the subscriber's field visitors and timestamp formatting; the
/// second is formatted once per second per thread). Without the buffered writer (no `init`, as
/// in tests) it goes through `tracing`.
pub fn request_line(id: &str, method: &str, path: &str, status: u16, cache: &str, ms: u64) {
    let Some(shared) = DROPPED.get() else {
        tracing::info!(request_id = id, method, path, status, cache, ms, "request");
        return;
    };
    thread_local! {
        static LINE: std::cell::RefCell<(u64, String, String)> =
            std::cell::RefCell::new((u64::MAX, String::new(), String::with_capacity(256)));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    LINE.with(|cell| {
        let Ok(mut c) = cell.try_borrow_mut() else {
            return;
        };
        let (second, prefix, line) = &mut *c;
        if *second != now.as_secs() {
            *second = now.as_secs();
            let full = crate::util::clock::rfc3339(i64::try_from(now.as_millis()).unwrap_or(0));
            *prefix = full.get(..19).unwrap_or_default().to_string();
        }
        use std::fmt::Write as _;
        line.clear();
        let _ = write!(
            line,
            "{prefix}.{:06}Z  INFO refract::http::server: request request_id=",
            now.subsec_micros()
        );
        quoted(line, id);
        let _ = write!(line, " method={method} path=");
        quoted(line, path);
        let _ = write!(line, " status={status} cache=");
        quoted(line, cache);
        let _ = writeln!(line, " ms={ms}");
        let _ = LineWriter(shared.clone()).write(line.as_bytes());
    });
}

/// `v` as `{v:?}` writes it (quoted, escaped), without the escaping pass when nothing needs it.
fn quoted(line: &mut String, v: &str) {
    if v.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        line.push('"');
        line.push_str(v);
        line.push('"');
    } else {
        use std::fmt::Write as _;
        let _ = write!(line, "{v:?}");
    }
}

/// Log lines dropped because stderr could not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_what_debug_gives() {
        for v in [
            "/img/a.jpg",
            "",
            "a\"b",
            "x\\y",
            "tab\there",
            "caf\u{e9}",
            "\u{7f}",
        ] {
            let mut line = String::new();
            quoted(&mut line, v);
            assert_eq!(line, format!("{v:?}"));
        }
    }

    #[test]
    fn lines_are_kept_whole_in_order_and_dropped_past_the_bound() {
        let shared = Arc::new(Shared {
            buf: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let mut w = LineWriter(shared.clone());
        w.write_all(b"one\n").unwrap();
        w.write_all(b"two\n").unwrap();
        assert_eq!(&*shared.buf.lock().unwrap(), b"one\ntwo\n");
        let big = vec![b'x'; MAX_BUFFERED];
        w.write_all(&big).unwrap();
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(
            shared.buf.lock().unwrap().len(),
            8,
            "a dropped line leaves nothing"
        );
    }
}
