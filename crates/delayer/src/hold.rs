//! The hold queue: packets wait here until they are due. Every packet gets the
//! same delay, so arrival order is due order and a FIFO is the whole timer
//! structure (O(1) per packet, order preserved by construction).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets (by id) waiting for their verdict.
#[derive(Debug)]
pub struct HoldQueue {
    delay: Duration,
    held: VecDeque<(Instant, u32)>,
}

impl HoldQueue {
    /// An empty queue delaying each packet by `delay`.
    pub fn new(delay: Duration) -> Self {
        HoldQueue {
            delay,
            held: VecDeque::new(),
        }
    }

    /// Hold packet `id`, which arrived at `now`.
    pub fn push(&mut self, id: u32, now: Instant) {
        // `now` is non-decreasing across calls (monotonic clock), so the
        // deque stays sorted by due time.
        self.held.push_back((now + self.delay, id));
    }

    /// How long until the oldest packet is due (`None` when empty).
    pub fn next_due_in(&self, now: Instant) -> Option<Duration> {
        self.held
            .front()
            .map(|(due, _)| due.saturating_duration_since(now))
    }

    /// Remove and return the ids of all packets due at `now`, oldest first.
    pub fn pop_due(&mut self, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(&(due, id)) = self.held.front() {
            if due > now {
                break;
            }
            self.held.pop_front();
            out.push(id);
        }
        out
    }

    /// Remove and return everything, oldest first (shutdown).
    pub fn drain(&mut self) -> Vec<u32> {
        self.held.drain(..).map(|(_, id)| id).collect()
    }

    /// Number of packets held.
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_after_the_delay() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = HoldQueue::new(ms(50));
        q.push(1, t0);
        q.push(2, t0 + ms(10));
        q.push(3, t0 + ms(10));
        assert_eq!(q.next_due_in(t0), Some(ms(50)));
        assert!(q.pop_due(t0 + ms(49)).is_empty());
        assert_eq!(q.pop_due(t0 + ms(50)), vec![1]);
        assert_eq!(q.next_due_in(t0 + ms(55)), Some(ms(5)));
        assert_eq!(q.pop_due(t0 + ms(70)), vec![2, 3]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.next_due_in(t0), None);
        q.push(4, t0 + ms(80));
        assert_eq!(q.drain(), vec![4]);
    }
}
