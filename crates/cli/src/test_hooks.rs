//! Crash-safety tests stop the binary at named points and kill it there. Setting
//! `LEARNLOOP_PAUSE_AT=<point>` makes the process announce `learnloop: paused at <point>` on
//! stderr and wait forever at that point; unset (always, in production) it costs one lookup.

use std::io::Write;

/// The environment variable naming the point to pause at.
pub const PAUSE_AT_ENV: &str = "LEARNLOOP_PAUSE_AT";

pub fn pause_point(point: &str) {
    if std::env::var_os(PAUSE_AT_ENV).is_some_and(|p| p == point) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "learnloop: paused at {point}");
        let _ = err.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
