//! Crash-safety and concurrency tests stop the binary at named points. Setting
//! `LEARNLOOP_PAUSE_AT=<point>` makes the process announce `learnloop: paused at <point>` on
//! stderr and wait there until a line (or the end of input) arrives on stdin: the test then kills
//! it, or lets it go on. Unset (always, in production) it costs one environment lookup.

use std::io::{BufRead, Write};

/// The environment variable naming the point to pause at.
pub const PAUSE_AT_ENV: &str = "LEARNLOOP_PAUSE_AT";

pub fn pause_point(point: &str) {
    if std::env::var_os(PAUSE_AT_ENV).is_some_and(|p| p == point) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "learnloop: paused at {point}");
        let _ = err.flush();
        let _ = std::io::stdin().lock().read_line(&mut String::new());
    }
}
