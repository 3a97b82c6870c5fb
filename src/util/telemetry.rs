//! Logging: a `tracing` subscriber writing one line per event to stderr. Keys and secrets are
//! never logged (requests are logged by path, without query values or auth headers).
//!
//! A request never waits on stderr: each formatted line is appended, whole, to a buffer of the
//! thread that logged it (a lock no other request thread takes), and a thread of its own writes
//! the buffers out every 25 ms, or sooner once one holds 256 KiB. Lines stay whole and, per
//! thread (so per connection: a connection never leaves its event loop), in the order they were
//! logged; nothing wakes the writer per line. When stderr is blocked and a thread's buffer
//! reaches 8 MiB, its new lines are dropped (never requests) and counted:
//! `refract_log_lines_dropped_total` in `/metrics`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

const FLUSH_EVERY: Duration = Duration::from_millis(25);
const WAKE_AT: usize = 256 << 10;
const MAX_BUFFERED: usize = 8 << 20;

/// One thread's lines not yet written.
#[derive(Default)]
struct Local {
    buf: Mutex<Vec<u8>>,
}

struct Shared {
    /// Every logging thread's buffer (a thread's is dropped once it has ended and is empty).
    threads: Mutex<Vec<Arc<Local>>>,
    wake: Condvar,
    stop: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    fn new() -> Self {
        Self {
            threads: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    /// Append `line` to `local`'s buffer, or count it dropped when the buffer is full.
    fn append(&self, local: &Local, line: &[u8]) {
        let Ok(mut buf) = local.buf.lock() else {
            return;
        };
        if buf.len() + line.len() > MAX_BUFFERED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            buf.extend_from_slice(line);
            if buf.len() >= WAKE_AT {
                self.wake.notify_one();
            }
        }
    }

    /// `f` of this thread's buffer, registered on the thread's first line; `None` on a thread
    /// being torn down.
    fn with_local<R>(self: &Arc<Self>, f: impl FnOnce(&Local) -> R) -> Option<R> {
        MINE.try_with(|mine| {
            let mut mine = mine.try_borrow_mut().ok()?;
            // (The buffer of this `Shared`: tests make several.)
            let me = Arc::as_ptr(self) as usize;
            if mine.as_ref().is_none_or(|(of, _)| *of != me) {
                let l = Arc::new(Local::default());
                self.threads.lock().ok()?.push(l.clone());
                *mine = Some((me, l));
            }
            mine.as_ref().map(|(_, l)| f(l))
        })
        .ok()
        .flatten()
    }

    /// Append `line` to this thread's buffer (straight to stderr on a thread being torn down).
    fn write_line(self: &Arc<Self>, line: &[u8]) {
        if self.with_local(|l| self.append(l, line)).is_none() {
            let _ = std::io::stderr().write_all(line);
        }
    }
}

thread_local! {
    /// The logging thread's buffer, and the `Shared` it belongs to.
    static MINE: std::cell::RefCell<Option<(usize, Arc<Local>)>> =
        const { std::cell::RefCell::new(None) };
}

static DROPPED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The writer of one event's line(s): appends to the logging thread's buffer.
pub struct LineWriter(Arc<Shared>);

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(line);
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
    let mut batch = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        let threads = match shared.threads.lock() {
            Ok(threads) => {
                let mut threads = if stopping {
                    threads
                } else {
                    match shared.wake.wait_timeout(threads, FLUSH_EVERY) {
                        Ok((t, _)) => t,
                        Err(_) => return,
                    }
                };
                // A thread that has ended keeps its buffer only until it is written out.
                threads.retain(|l| {
                    Arc::strong_count(l) > 1 || l.buf.lock().is_ok_and(|b| !b.is_empty())
                });
                threads.clone()
            }
            Err(_) => return,
        };
        for local in threads {
            if let Ok(mut buf) = local.buf.lock() {
                std::mem::swap(&mut *buf, &mut batch);
            }
            if !batch.is_empty() {
                let mut out = out.lock();
                let _ = out.write_all(&batch);
                let _ = out.flush();
                batch.clear();
            }
        }
        if stopping {
            return;
        }
    }
}

/// Install the global subscriber with the filter from `server.log`. Keep the guard until exit.
pub fn init(filter: &str) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let shared = Arc::new(Shared::new());
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
        // By hand: `write!` costs more than the rest of the line together.
        line.clear();
        line.push_str(prefix);
        line.push('.');
        digits(line, u64::from(now.subsec_micros()), 6);
        line.push_str("Z  INFO refract::http::server: request request_id=");
        quoted(line, id);
        line.push_str(" method=");
        line.push_str(method);
        line.push_str(" path=");
        quoted(line, path);
        line.push_str(" status=");
        digits(line, u64::from(status), 1);
        line.push_str(" cache=");
        quoted(line, cache);
        line.push_str(" ms=");
        digits(line, ms, 1);
        line.push('\n');
        shared.write_line(line.as_bytes());
    });
}

/// `v` in decimal, zero-padded to at least `width` digits (at most 20, a `u64`'s most).
fn digits(line: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    let width = width.clamp(1, buf.len());
    while at > 0 && (v > 0 || buf.len() - at < width) {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    line.push_str(std::str::from_utf8(&buf[at..]).unwrap_or("0"));
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
    fn digits_are_what_format_gives() {
        for (v, w) in [
            (0, 1),
            (7, 1),
            (200, 1),
            (u64::MAX, 1),
            (0, 6),
            (42, 6),
            (999_999, 6),
        ] {
            let mut line = String::new();
            digits(&mut line, v, w);
            assert_eq!(line, format!("{v:0w$}"));
        }
    }

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
        let shared = Arc::new(Shared::new());
        let mut w = LineWriter(shared.clone());
        w.write_all(b"one\n").unwrap();
        w.write_all(b"two\n").unwrap();
        let mine = shared.threads.lock().unwrap()[0].clone();
        assert_eq!(&*mine.buf.lock().unwrap(), b"one\ntwo\n");
        let big = vec![b'x'; MAX_BUFFERED];
        w.write_all(&big).unwrap();
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(
            mine.buf.lock().unwrap().len(),
            8,
            "a dropped line leaves nothing"
        );
    }

    #[test]
    fn each_thread_has_its_own_buffer_kept_until_written_out() {
        let shared = Arc::new(Shared::new());
        let mut w = LineWriter(shared.clone());
        w.write_all(b"main\n").unwrap();
        let other = shared.clone();
        std::thread::spawn(move || LineWriter(other).write_all(b"other\n").unwrap())
            .join()
            .unwrap();
        let threads = shared.threads.lock().unwrap().clone();
        let mut lines: Vec<Vec<u8>> = threads
            .iter()
            .map(|l| l.buf.lock().unwrap().clone())
            .collect();
        lines.sort();
        assert_eq!(lines, vec![b"main\n".to_vec(), b"other\n".to_vec()]);
        // The ended thread's buffer is still registered (not yet written out).
        assert_eq!(threads.len(), 2);
    }
}
