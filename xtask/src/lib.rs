//! What the benchmark driver (`cargo xtask bench`) and its Wayland client share: one clock,
//! CPU accounting from `/proc`, percentiles, and the client's result format.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of a run, so an injection
/// time taken by the driver can be compared with a receive time taken by the client.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One process's CPU time (user + system, all its threads) as `/proc/PID/stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    pub pid: u32,
    pub comm: String,
    /// utime + stime in clock ticks.
    pub ticks: u64,
}

/// Reads `/proc/PID/stat`: `None` if the process is gone or the file is not what we expect.
pub fn cpu_sample(pid: u32) -> Option<CpuSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

fn parse_stat(pid: u32, text: &str) -> Option<CpuSample> {
    // The command name is in parentheses and may itself contain spaces or ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15), so utime is rest[11].
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(CpuSample {
        pid,
        comm,
        ticks: utime + stime,
    })
}

/// The parent of `pid`, from `/proc/PID/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = text.rfind(')')?;
    text.get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `roots` and all their descendants that are alive now.
pub fn process_trees(roots: &[u32]) -> BTreeSet<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_of(pid) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut set: BTreeSet<u32> = roots.iter().copied().collect();
    // Repeat until no new child is found (the table is small; depth is a few levels).
    loop {
        let before = set.len();
        for &(pid, ppid) in &parents {
            if set.contains(&ppid) {
                set.insert(pid);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// CPU spent by each process between two sample sets (processes in both).
pub fn cpu_delta(before: &[CpuSample], after: &[CpuSample]) -> Vec<CpuSample> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.pid == a.pid)?;
            Some(CpuSample {
                pid: a.pid,
                comm: a.comm.clone(),
                ticks: a.ticks.saturating_sub(b.ticks),
            })
        })
        .collect()
}

/// The p-th percentile (0..=100) of sorted values, nearest rank; 0 for no values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Percentiles {
    /// From nanosecond samples.
    pub fn from_ns(samples: &[u64]) -> Percentiles {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            n: sorted.len(),
            p50_us: us(percentile(&sorted, 50.0)),
            p99_us: us(percentile(&sorted, 99.0)),
            max_us: us(sorted.last().copied().unwrap_or(0)),
            mean_us: if sorted.is_empty() {
                0.0
            } else {
                us(sorted.iter().sum::<u64>() / sorted.len() as u64)
            },
        }
    }
}

/// What `corral-bench-client` writes when it is done (JSON, to `--out`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientResult {
    pub mode: String,
    pub width: i32,
    pub height: i32,
    /// The rectangle each frame damages (the whole buffer for `full`).
    pub damage: (i32, i32),
    /// Frames completed (commit → frame done) inside the measuring window.
    pub frames: u64,
    /// CLOCK_MONOTONIC at the start and end of the measuring window.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Commit to frame-done latencies of the frames measured, in ns.
    pub latencies_ns: Vec<u64>,
    /// CPU of every watched process over the measuring window.
    pub cpu: Vec<CpuSample>,
    pub clock_ticks_per_second: u64,
    /// Keys mode: CLOCK_MONOTONIC when each key press reached the client.
    pub key_presses_ns: Vec<u64>,
}

impl ClientResult {
    pub fn seconds(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }

    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds().max(1e-9)
    }

    /// CPU seconds of all watched processes.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu.iter().map(|c| c.ticks).sum::<u64>() as f64
            / self.clock_ticks_per_second.max(1) as f64
    }
}

/// Writes `bytes` to `path` so a reader polling for the file never sees half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 5 0 0";
        let s = parse_stat(4242, line).unwrap();
        assert_eq!(s.comm, "a) b) c");
        assert_eq!(s.ticks, 281);
    }

    #[test]
    fn our_own_stat_is_readable_and_our_tree_contains_us() {
        let me = std::process::id();
        assert!(cpu_sample(me).is_some());
        assert!(process_trees(&[parent_of(me).unwrap()]).contains(&me));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
