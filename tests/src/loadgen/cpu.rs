//! CPU time of this process (getrusage) and of another one (`/proc/PID/stat`).

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

/// User + system CPU time consumed by this process so far.
pub fn own_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => timeval(usage.user_time()) + timeval(usage.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn timeval(tv: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// User + system CPU time of process `pid` (all its threads), or `None` if it is gone.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    Some(ticks_to_duration(ticks, clock_ticks_per_second()))
}

/// Kernel clock ticks per second for `/proc` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => u64::try_from(hz).unwrap_or(100),
        _ => 100,
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    let hz = hz.max(1);
    Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_awkward_name() {
        let line = "4242 (fan out) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(325));
    }

    #[test]
    fn rejects_truncated_stat() {
        assert_eq!(parse_stat_ticks("1 (a) S 1 2 3"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn ticks_convert_at_100_hz() {
        assert_eq!(ticks_to_duration(325, 100), Duration::from_millis(3250));
    }

    #[test]
    fn reads_own_process() {
        let me = process_cpu(std::process::id()).expect("own /proc entry");
        // Burn a little CPU so both clocks are non-zero at coarse resolutions.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(own_cpu() > Duration::ZERO);
        assert!(process_cpu(std::process::id()).expect("again") >= me);
    }
}
