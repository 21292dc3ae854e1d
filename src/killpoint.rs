//! Test hook for crash safety: `ICESAT2_KILL_AT=<point>[:<n>]` makes the
//! process send itself SIGKILL the n-th time (default first) it reaches
//! `point`. Points: `fetch` (a granule opened), `decode` (a granule
//! extracted), `staged` (a checkpoint's files durable, journal not yet
//! written), `journal` (the journal record's temporary file durable, not yet
//! renamed), `publish` (a committed file moved into place, others not yet).
//! Without the variable this is one relaxed atomic load per call.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Target {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let text = std::env::var("ICESAT2_KILL_AT").ok()?;
            let (point, nth) = match text.split_once(':') {
                Some((point, nth)) => (point.to_string(), nth.parse().ok()?),
                None => (text, 1),
            };
            Some(Target {
                point,
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Marks that the process reached `point`.
pub fn reached(point: &str) {
    if let Some(target) = target()
        && target.point == point
        && target.seen.fetch_add(1, Ordering::SeqCst) + 1 == target.nth
    {
        // SAFETY: kill(2) with our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
