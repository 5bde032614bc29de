//! How long to wait before the next delivery attempt: the initial delay, doubled after
//! every failure, capped, minus up to a tenth of random jitter so that a queue of failed
//! mails does not hammer a recovering server in lockstep (and the cap is never exceeded).

use std::time::Duration;

/// Exponential retry delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial_secs: u64,
    /// Largest delay.
    pub max_secs: u64,
}

impl Backoff {
    /// The delay before the next attempt after `failures` failed attempts (1 or more).
    pub fn delay(&self, failures: u32) -> Duration {
        let full_ms = self.full_delay_ms(failures);
        let jitter_ms = rand::random_range(0..=full_ms / 10);
        Duration::from_millis(full_ms - jitter_ms)
    }

    fn full_delay_ms(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(63);
        let secs = self
            .initial_secs
            .saturating_mul(1u64 << doublings)
            .min(self.max_secs);
        secs.saturating_mul(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_small_jitter() {
        let backoff = Backoff {
            initial_secs: 30,
            max_secs: 900,
        };
        let expected_secs = [30, 60, 120, 240, 480, 900, 900];
        for (failures, secs) in (1..).zip(expected_secs) {
            let delay = backoff.delay(failures);
            let full = Duration::from_secs(secs);
            assert!(delay <= full, "{failures}: {delay:?}");
            assert!(delay >= full.mul_f64(0.9), "{failures}: {delay:?}");
        }
        assert!(backoff.delay(1000) <= Duration::from_secs(900));
    }
}
