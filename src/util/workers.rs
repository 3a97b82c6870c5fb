//! The CPU pool: image work runs on tokio's blocking threads, at most `workers` at once, behind a
//! bounded queue. A full queue, or a wait past `queue_timeout`, answers `Busy` (503).
//!
//! Invariants: no pixel work on the async runtime threads; a panic in a job becomes an error,
//! never a crashed server. Cancellation is safe: a caller that goes away while queued leaves the
//! queue (the `waiting` gauge counts only live waiters); a slot is held by the job itself until
//! it has really finished on its thread, so abandoned work never puts more than `workers` jobs on
//! the CPU; and a job whose caller left before it started is not run at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a job did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is full or the wait timed out.
    Busy,
    /// The job panicked (a bug).
    Panicked(String),
}

/// A bounded pool of CPU slots.
pub struct CpuPool {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
    done: Arc<std::sync::atomic::AtomicU64>,
    queue_depth: usize,
    queue_timeout: Duration,
    workers: usize,
}

/// Counts one waiter for as long as it lives (dropped on success, timeout or cancellation).
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells a job that its caller went away (set when the awaiting future is dropped).
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Counts one job on a thread for as long as it runs, and as done when it ends.
struct Running(Arc<AtomicUsize>, Arc<std::sync::atomic::AtomicU64>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

impl CpuPool {
    /// `workers` concurrent jobs, `queue_depth` waiting, each waiting at most `queue_timeout`.
    pub fn new(workers: usize, queue_depth: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            done: Arc::default(),
            queue_depth,
            queue_timeout,
            workers: workers.max(1),
        }
    }

    /// Jobs that run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Jobs holding a slot now (running, or handed to a thread and about to run).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Jobs ended so far (run or skipped).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Nothing queued and nothing running.
    pub fn idle(&self) -> bool {
        self.waiting() == 0 && self.running() == 0
    }

    /// Run `job` on a blocking thread once a slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.admit()?.run(job).await
    }

    /// Take a place in the queue now (`Busy` when it is full), to run a job later: a caller that
    /// must read its input first holds the place while it reads, so a full queue is refused
    /// before any input is read, and input held in memory is bounded by the queue.
    pub fn admit(&self) -> Result<Ticket<'_>, PoolError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue_depth {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Busy);
        }
        Ok(Ticket {
            pool: self,
            _waiter: Waiter(&self.waiting),
        })
    }
}

/// A place in the queue of a `CpuPool` (released when dropped or when its job gets a slot).
pub struct Ticket<'a> {
    pool: &'a CpuPool,
    _waiter: Waiter<'a>,
}

impl Ticket<'_> {
    /// Wait for a slot (at most `queue_timeout`), then run `job` on a blocking thread.
    pub async fn run<T, F>(self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let pool = self.pool;
        let permit = {
            let _place = self;
            match tokio::time::timeout(pool.queue_timeout, pool.slots.clone().acquire_owned()).await
            {
                Ok(Ok(p)) => p,
                _ => return Err(PoolError::Busy),
            }
        };
        pool.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(pool.running.clone(), pool.done.clone());
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon = Abandon(abandoned.clone());
        let handle = tokio::task::spawn_blocking(move || {
            // The slot and the count go with the job, not with the caller.
            let _slot = (permit, running);
            if abandoned.load(Ordering::Acquire) {
                return None;
            }
            Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
        });
        match handle.await {
            Ok(Some(Ok(v))) => Ok(v),
            Ok(Some(Err(p))) => Err(PoolError::Panicked(panic_message(p.as_ref()))),
            Ok(None) => Err(PoolError::Panicked("job abandoned".into())),
            Err(e) => Err(PoolError::Panicked(e.to_string())),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pool_runs_jobs_and_contains_panics() {
        let pool = CpuPool::new(1, 4, Duration::from_secs(5));
        assert_eq!(pool.run(|| 2 + 2).await, Ok(4));
        let r: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert_eq!(r, Err(PoolError::Panicked("boom".into())));
    }

    #[tokio::test]
    async fn pool_sheds_when_queue_is_full() {
        let pool = std::sync::Arc::new(CpuPool::new(1, 0, Duration::from_secs(5)));
        assert_eq!(pool.run(|| 1).await, Err(PoolError::Busy));
    }

    #[tokio::test]
    async fn a_ticket_holds_a_queue_place_until_dropped() {
        let pool = CpuPool::new(1, 1, Duration::from_secs(5));
        let t = pool.admit().unwrap();
        assert_eq!(pool.waiting(), 1);
        assert!(pool.admit().is_err(), "the queue is full");
        drop(t);
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.admit().unwrap().run(|| 5).await, Ok(5));
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn abandoned_waiters_leave_the_queue_and_slots_follow_the_job() {
        use std::sync::mpsc;
        let pool = Arc::new(CpuPool::new(1, 100, Duration::from_secs(30)));
        // A job that holds the only slot until told to finish.
        let (release, gate) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let p = pool.clone();
        let busy = tokio::spawn(async move {
            p.run(move || {
                let _ = started_tx.send(());
                let _ = gate.recv();
            })
            .await
        });
        started.await.unwrap();
        // Its caller goes away: the job keeps its slot while it runs.
        busy.abort();
        let _ = busy.await;
        assert_eq!(pool.running(), 1);
        // Ten callers queue behind it, then leave.
        let ran = Arc::new(AtomicUsize::new(0));
        let mut queued = Vec::new();
        for _ in 0..10 {
            let (p, ran) = (pool.clone(), ran.clone());
            queued.push(tokio::spawn(async move {
                p.run(move || ran.fetch_add(1, Ordering::SeqCst)).await
            }));
        }
        while pool.waiting() < 10 {
            tokio::task::yield_now().await;
        }
        for q in &queued {
            q.abort();
        }
        for q in queued {
            let _ = q.await;
        }
        assert_eq!(pool.waiting(), 0, "abandoned waiters are not counted");
        // A fresh job still waits for the abandoned one to finish on its thread.
        let p = pool.clone();
        let fresh = tokio::spawn(async move { p.run(|| 7).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !fresh.is_finished(),
            "the slot is still held by the running job"
        );
        release.send(()).unwrap();
        assert_eq!(fresh.await.unwrap(), Ok(7));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "abandoned jobs never ran");
        assert_eq!((pool.waiting(), pool.running()), (0, 0));
    }
}
