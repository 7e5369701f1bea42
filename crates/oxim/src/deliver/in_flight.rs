//! Deliveries the daemon has started and not finished. A daemon told to
//! stop lets them finish first: Exim's delivery processes outlive its
//! daemon, and a delivery cut short after its `=>` line but before the
//! message left the spool would be made again by the next queue run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static FINISHED: Notify = Notify::const_new();

/// One running delivery (or queue run), counted until dropped, also when
/// its task panics.
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        FINISHED.notify_waiters();
    }
}

/// Deliveries running now.
pub fn running() -> usize {
    RUNNING.load(Ordering::SeqCst)
}

/// Wait until no delivery runs, or `limit` has passed; the number still
/// running at the end.
pub async fn wait_idle(limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let finished = FINISHED.notified();
        tokio::pin!(finished);
        // Registered before the count is read: no wake-up is missed.
        finished.as_mut().enable();
        let n = running();
        if n == 0 {
            return 0;
        }
        if tokio::time::timeout_at(deadline, finished).await.is_err() {
            return running();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_last_delivery() {
        let a = InFlight::start();
        let b = InFlight::start();
        let waiter = tokio::spawn(wait_idle(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(b);
        assert_eq!(waiter.await.unwrap(), 0);
        let c = InFlight::start();
        assert_eq!(wait_idle(Duration::from_millis(30)).await, 1);
        drop(c);
    }
}
