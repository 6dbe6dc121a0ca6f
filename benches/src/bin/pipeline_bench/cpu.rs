//! CPU time: a run's CPU time is the work it did, which varies less than its duration on a
//! shared machine.

use std::time::Duration;

/// CPU time this process has used and time the machine's CPUs were taken by the host
/// (`steal`), in seconds, from `/proc` (Linux; zero elsewhere). A run's CPU time is the work
/// it did, which varies less than its duration on a shared machine.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuTimes {
    process: f64,
    steal: f64,
}

pub(crate) fn cpu_times() -> CpuTimes {
    const TICKS: f64 = 100.0;
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces): utime and stime are the
            // 12th and 13th of them.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    let steal = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| stat.lines().next()?.split_whitespace().nth(8)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    CpuTimes { process: process / TICKS, steal: steal / TICKS }
}

pub(crate) fn report_cpu(what: &str, (before, after): (CpuTimes, CpuTimes), events: u64, elapsed: Duration) {
    let used = after.process - before.process;
    println!(
        "  {what} CPU: {used:.1} s ({:.1} µs per event, {:.2} cores busy); host steal {:.1} s",
        used * 1e6 / events as f64,
        used / elapsed.as_secs_f64(),
        after.steal - before.steal
    );
}
