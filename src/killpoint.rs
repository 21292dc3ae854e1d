//! Test hooks for crash and fault safety.
//!
//! `ICESAT2_KILL_AT=<point>[:<n>]` makes the process send itself SIGKILL the
//! n-th time (default first) it reaches `point`. Points: `fetch` (a granule
//! opened), `decode` (a granule extracted), `staged` (a checkpoint's files
//! durable, journal not yet written), `journal` (the journal record's
//! temporary file durable, not yet renamed), `publish` (a committed file
//! moved into place, others not yet), `remove` (`--fresh`: a file of the
//! earlier dataset moved aside or deleted, others not yet), `retire` (a
//! record replaced by newer revisions: its files removed, the record not yet).
//!
//! `ICESAT2_FAIL_AT=<point>[:<n>]` makes the n-th call of `fault(point)`
//! and every later one fail with the error the point stands for, as a full
//! disk or a spent file limit would: `open` (the writer opens a data file:
//! too many open files), `stage` (a finished file is made durable: no space
//! left on the device).
//!
//! Without the variables each call is one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Target {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

impl Target {
    fn from_env(variable: &str) -> Option<Target> {
        let text = std::env::var(variable).ok()?;
        let (point, nth) = match text.split_once(':') {
            Some((point, nth)) => (point.to_string(), nth.parse().ok()?),
            None => (text, 1),
        };
        Some(Target {
            point,
            nth,
            seen: AtomicU64::new(0),
        })
    }

    /// Counts a call at `point`; the call's number when it is this target's.
    fn count(&self, point: &str) -> Option<u64> {
        (self.point == point).then(|| self.seen.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

fn kill_target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| Target::from_env("ICESAT2_KILL_AT"))
        .as_ref()
}

fn fail_target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| Target::from_env("ICESAT2_FAIL_AT"))
        .as_ref()
}

/// Marks that the process reached `point`.
pub fn reached(point: &str) {
    if let Some(target) = kill_target()
        && target.count(point) == Some(target.nth)
    {
        // SAFETY: kill(2) with our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// The injected failure of `point`, if `ICESAT2_FAIL_AT` asks for one now.
pub fn fault(point: &str) -> std::io::Result<()> {
    let Some(target) = fail_target() else {
        return Ok(());
    };
    match target.count(point) {
        Some(call) if call >= target.nth => Err(std::io::Error::from_raw_os_error(match point {
            "open" => libc::EMFILE,
            _ => libc::ENOSPC,
        })),
        _ => Ok(()),
    }
}
