//! The CPU pool: image work runs on tokio's blocking threads, at most `workers` at once, behind a
//! bounded queue. A full queue, or a wait past `queue_timeout`, answers `Busy` (503).
//!
//! Invariant: no pixel work on the async runtime threads; a panic in a job becomes an error,
//! never a crashed server.

use std::sync::atomic::{AtomicUsize, Ordering};
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
    slots: Semaphore,
    waiting: AtomicUsize,
    queue_depth: usize,
    queue_timeout: Duration,
}

impl CpuPool {
    /// `workers` concurrent jobs, `queue_depth` waiting, each waiting at most `queue_timeout`.
    pub fn new(workers: usize, queue_depth: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Semaphore::new(workers.max(1)),
            waiting: AtomicUsize::new(0),
            queue_depth,
            queue_timeout,
        }
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Run `job` on a blocking thread once a slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue_depth {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Busy);
        }
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = match permit {
            Ok(Ok(p)) => p,
            _ => return Err(PoolError::Busy),
        };
        let handle = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        });
        match handle.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(p)) => Err(PoolError::Panicked(panic_message(p.as_ref()))),
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
}
