//! Client-side pacing of control-plane calls, so the guard stays inside AWS's
//! shared per-account request rates instead of being throttled by them.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Lets calls through no faster than one per `interval`.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// One call per `interval`.
    pub fn new(interval: Duration) -> Self {
        Pacer {
            interval,
            next: Mutex::new(None),
        }
    }

    /// `per_second` calls a second.
    pub fn per_second(per_second: u32) -> Self {
        Pacer::new(Duration::from_secs(1) / per_second.max(1))
    }

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        drop(next);
        tokio::time::sleep_until(slot).await;
    }

    /// When the next call could start without waiting.
    pub async fn ready_in(&self) -> Duration {
        let next = self.next.lock().await;
        next.map_or(Duration::ZERO, |n| n.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_interval() {
        let pacer = Pacer::new(Duration::from_secs(20));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(40));
        assert_eq!(pacer.ready_in().await, Duration::from_secs(20));
    }
}
