//! The `icesat2` binary: parse -> run -> exit status. Errors print as one
//! line (`icesat2: ...`); a panic is reported the same way, never as a backtrace.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes
    // away (`icesat2 inspect ... | head`) instead of failing on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // glibc gives large freed buffers back to the kernel at once (mmap'd
    // blocks, heap trimming), so every granule's and row group's buffers
    // page-fault in again: keep them instead. Bulk benchmark, same binary
    // (GLIBC_TUNABLES): system time 0.45 s -> 0.37 s, run 1.33 s -> 1.23 s.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // thread starts.
    // Older glibc refuses a threshold above 32 MiB; then nothing is set
    // (fixing the other two would freeze the threshold at 128 KiB).
    // With nothing trimmed, every arena's own peak stays resident, and
    // memory kept by one thread's arena is not reused by another's: so one
    // arena per core, not eight (bulk benchmark: peak memory 195 MB ->
    // 134 MB, system time 0.31 s -> 0.27 s, median of 5).
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20) == 1 {
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
        }
    }
    // Panics are caught below (and per granule in the pipeline) and reported
    // as one line; the default hook would print a backtrace hint.
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(icesat2::cli::main) {
        Ok(code) => code,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_string());
            eprintln!("icesat2: internal error: {message}");
            ExitCode::from(1)
        }
    }
}
