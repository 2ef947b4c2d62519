//! Parsers for the procfs files the host collector reads, and the rate arithmetic.
//!
//! Pure functions over file contents, so they are tested on captured text.

/// Jiffy counters of the aggregate `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// idle + iowait.
    pub idle: u64,
    /// user + nice + system + idle + iowait + irq + softirq + steal.
    pub total: u64,
}

/// Reads the first `cpu ` line of `/proc/stat`.
///
/// # Errors
/// A message saying what is missing.
pub fn parse_cpu(stat: &str) -> Result<CpuTimes, String> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("no aggregate `cpu` line")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| {
            f.parse::<u64>()
                .map_err(|_| format!("`{f}` in the cpu line is not a counter"))
        })
        .collect::<Result<_, _>>()?;
    if fields.len() < 4 {
        return Err(format!(
            "cpu line has {} counters, expected at least 4",
            fields.len()
        ));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    Ok(CpuTimes {
        idle: get(3) + get(4),
        total: (0..8).map(get).sum(),
    })
}

/// Busy percentage between two readings; 0 when no time passed.
pub fn cpu_percent(prev: &CpuTimes, cur: &CpuTimes) -> f64 {
    let total = cur.total.saturating_sub(prev.total);
    let idle = cur.idle.saturating_sub(prev.idle);
    if total == 0 {
        return 0.0;
    }
    (total.saturating_sub(idle) as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
}

/// `(MemTotal, MemAvailable)` in kB from `/proc/meminfo`.
///
/// # Errors
/// A message naming the missing or malformed key.
pub fn parse_meminfo(meminfo: &str) -> Result<(u64, u64), String> {
    let find = |key: &str| -> Result<u64, String> {
        let line = meminfo
            .lines()
            .find(|l| l.split(':').next() == Some(key))
            .ok_or_else(|| format!("no `{key}` line"))?;
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("`{key}` has no number"))
    };
    let total = find("MemTotal")?;
    if total == 0 {
        return Err("MemTotal is 0".into());
    }
    Ok((total, find("MemAvailable")?))
}

/// Percentage of memory in use.
pub fn memory_percent(total_kb: u64, available_kb: u64) -> f64 {
    if total_kb == 0 {
        return 0.0;
    }
    (total_kb.saturating_sub(available_kb) as f64 / total_kb as f64 * 100.0).clamp(0.0, 100.0)
}

/// Received plus transmitted bytes of every interface except `lo`, from `/proc/net/dev`.
///
/// # Errors
/// A message naming the malformed interface line.
pub fn parse_net_dev(dev: &str) -> Result<u64, String> {
    let mut sum = 0u64;
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| {
            f.get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("interface `{}` has no byte counter {i}", name.trim()))
        };
        sum = sum.wrapping_add(num(0)?).wrapping_add(num(8)?);
    }
    Ok(sum)
}

/// Megabits per second moved between two byte totals `secs` apart; 0 for a counter reset or
/// no elapsed time.
pub fn network_mbits(prev_bytes: u64, cur_bytes: u64, secs: f64) -> f64 {
    if secs <= 0.0 || cur_bytes < prev_bytes {
        return 0.0;
    }
    (cur_bytes - prev_bytes) as f64 * 8.0 / 1e6 / secs
}
