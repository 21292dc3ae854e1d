//! The one way a request is tried again: a number of attempts, waits that
//! double from a first one up to a cap, and a server's `Retry-After`
//! (seconds or an HTTP date, `https::retry_after`) in place of the
//! computed wait when it gives one. Used for granule byte ranges
//! (`remote::Retrying`), HTTPS requests (`https::NasaClient`) and CMR pages
//! (`catalog::cmr`).

use std::future::Future;
use std::time::Duration;

/// What one attempt came to.
pub enum Attempt<T, E> {
    /// Done, well or not: returned as it is.
    Done(Result<T, E>),
    /// Failed in a way worth trying again, after the server's wait if it
    /// named one; `E` is what the caller gets when attempts are spent.
    Again(E, Option<Duration>),
}

/// Attempts and waits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure; each later one twice as long.
    pub first: Duration,
    /// No wait, computed or asked by a server, is longer.
    pub cap: Duration,
}

impl Backoff {
    /// The wait after failed attempt `attempt` (from 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use icesat2::store::retry::Backoff;
    ///
    /// let backoff = Backoff {
    ///     attempts: 6,
    ///     first: Duration::from_millis(200),
    ///     cap: Duration::from_secs(60),
    /// };
    /// assert_eq!(backoff.wait(3, None), Duration::from_millis(800));
    /// // A server's Retry-After wins, up to the cap.
    /// assert_eq!(backoff.wait(3, Some(Duration::from_secs(5))), Duration::from_secs(5));
    /// ```
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after
            .unwrap_or_else(|| self.first.saturating_mul(2u32.saturating_pow(attempt - 1)))
            .min(self.cap)
    }

    /// Runs `attempt` (given its number, from 1) until it is done or the
    /// attempts are spent.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let mut number = 1;
        loop {
            match attempt(number).await {
                Attempt::Done(result) => return result,
                Attempt::Again(err, _) if number >= self.attempts => return Err(err),
                Attempt::Again(_, retry_after) => {
                    tokio::time::sleep(self.wait(number, retry_after)).await;
                    number += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_a_servers_wait_is_taken_up_to_the_cap() {
        let backoff = Backoff {
            attempts: 4,
            first: Duration::from_millis(200),
            cap: Duration::from_secs(60),
        };
        assert_eq!(backoff.wait(1, None), Duration::from_millis(200));
        assert_eq!(backoff.wait(3, None), Duration::from_millis(800));
        assert_eq!(backoff.wait(40, None), Duration::from_secs(60));
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn attempts_stop_when_done_or_spent() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let backoff = Backoff {
            attempts: 3,
            first: Duration::from_millis(1),
            cap: Duration::from_millis(1),
        };
        let mut seen = Vec::new();
        let spent: Result<(), String> = runtime.block_on(backoff.run(|n| {
            seen.push(n);
            async move { Attempt::Again(format!("failed {n}"), None) }
        }));
        assert_eq!(spent, Err("failed 3".to_string()));
        assert_eq!(seen, [1, 2, 3]);
        let done: Result<u32, String> = runtime.block_on(backoff.run(|n| async move {
            if n == 2 {
                Attempt::Done(Ok(n))
            } else {
                Attempt::Again("again".into(), None)
            }
        }));
        assert_eq!(done, Ok(2));
    }
}
