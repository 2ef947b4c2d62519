//! Real host metrics from Linux procfs and `statvfs`.
//!
//! | metric | source | computation |
//! |---|---|---|
//! | `cpu_utilization` | `/proc/stat`, first `cpu` line | busy share of jiffies between two reads: 100 · (Δtotal − Δidle) / Δtotal, where idle = idle + iowait and total = user … steal |
//! | `memory_usage` | `/proc/meminfo` | 100 · (MemTotal − MemAvailable) / MemTotal |
//! | `disk_usage` | `statvfs` of each configured mount, summed | 100 · used / (used + available to users), as `df` reports |
//! | `network_traffic` | `/proc/net/dev`, every interface but `lo` | (Δreceived + Δtransmitted bytes) · 8 / 10⁶ / elapsed seconds |
//!
//! CPU and network are rates, so they need two counter reads. The first [`HostCollector::collect`]
//! primes: it reads the counters, waits `prime_interval`, and reads again, so every call returns
//! all the requested metrics. Later calls measure over the time since the previous call.
//! A counter that went backwards (an interface was reset) counts as zero for that interval.
//! Without procfs (non-Linux), [`HostCollector::new`] fails with a message saying so.

use std::path::{Path, PathBuf};
use std::time::Instant;

use shardline_core::{MetricEvent, MetricType};

use crate::config::HostConfig;
use crate::error::{CollectError, ConfigError};
use crate::sample::{build_event, selected_types};

mod procfs;

pub use procfs::{
    CpuTimes, cpu_percent, memory_percent, network_mbits, parse_cpu, parse_meminfo, parse_net_dev,
};

/// Counter readings taken at one instant.
#[derive(Debug, Clone, Copy)]
struct Counters {
    cpu: CpuTimes,
    net_bytes: u64,
    at: Instant,
}

/// Samples the machine it runs on.
#[derive(Debug)]
pub struct HostCollector {
    cfg: HostConfig,
    instance_id: String,
    previous: Option<Counters>,
}

impl HostCollector {
    /// A collector for this host. The instance id is `cfg.instance_id` or the hostname.
    ///
    /// # Errors
    /// [`CollectError::Unavailable`] when procfs cannot be read (not Linux, or not mounted at
    /// `cfg.proc_root`); [`ConfigError`] for an empty region or mount list.
    pub fn new(cfg: HostConfig) -> Result<Self, CollectError> {
        if cfg.region.trim().is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "region",
                value: "\"\"".into(),
                rule: "a region name such as eu-west-1",
            }
            .into());
        }
        if cfg.mounts.is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "mounts",
                value: "[]".into(),
                rule: "at least one mount point, e.g. [\"/\"]",
            }
            .into());
        }
        read(&cfg.proc_root.join("stat"))?;
        let instance_id = match cfg.instance_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let path = cfg.proc_root.join("sys/kernel/hostname");
                let name = read(&path)?.trim().to_string();
                if name.is_empty() {
                    return Err(CollectError::Parse {
                        path,
                        detail: "empty hostname; set instance_id in the host collector config"
                            .into(),
                    });
                }
                name
            }
        };
        Ok(HostCollector {
            cfg,
            instance_id,
            previous: None,
        })
    }

    /// The instance id written on events.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Samples the selected metrics (`None` = all four) and stamps them with `now_ms`.
    ///
    /// # Errors
    /// [`CollectError`] naming the source that could not be read or parsed.
    pub async fn collect(
        &mut self,
        which: Option<MetricType>,
        now_ms: i64,
    ) -> Result<Vec<MetricEvent>, CollectError> {
        let types = selected_types(which);
        let needs_rates = types
            .iter()
            .any(|t| matches!(t, MetricType::CpuUtilization | MetricType::NetworkTraffic));
        let mut rates = None;
        if needs_rates {
            let prev = match self.previous {
                Some(p) => p,
                None => {
                    let p = self.read_counters()?;
                    tokio::time::sleep(self.cfg.prime_interval).await;
                    p
                }
            };
            let cur = self.read_counters()?;
            let secs = cur.at.duration_since(prev.at).as_secs_f64();
            rates = Some((
                cpu_percent(&prev.cpu, &cur.cpu),
                network_mbits(prev.net_bytes, cur.net_bytes, secs),
            ));
            self.previous = Some(cur);
        }
        let mut out = Vec::with_capacity(types.len());
        for t in types {
            let value = match (t, rates) {
                (MetricType::CpuUtilization, Some((cpu, _))) => cpu,
                (MetricType::NetworkTraffic, Some((_, net))) => net,
                (MetricType::MemoryUsage, _) => self.memory()?,
                (MetricType::DiskUsage, _) => self.disk()?,
                _ => continue,
            };
            out.push(build_event(
                t,
                value,
                &self.instance_id,
                &self.cfg.region,
                now_ms,
            ));
        }
        Ok(out)
    }

    fn read_counters(&self) -> Result<Counters, CollectError> {
        let stat = self.cfg.proc_root.join("stat");
        let cpu = parse_cpu(&read(&stat)?)
            .map_err(|detail| CollectError::Parse { path: stat, detail })?;
        let dev = self.cfg.proc_root.join("net/dev");
        let net_bytes = parse_net_dev(&read(&dev)?)
            .map_err(|detail| CollectError::Parse { path: dev, detail })?;
        Ok(Counters {
            cpu,
            net_bytes,
            at: Instant::now(),
        })
    }

    fn memory(&self) -> Result<f64, CollectError> {
        let path = self.cfg.proc_root.join("meminfo");
        let (total, available) =
            parse_meminfo(&read(&path)?).map_err(|detail| CollectError::Parse { path, detail })?;
        Ok(memory_percent(total, available))
    }

    fn disk(&self) -> Result<f64, CollectError> {
        let (mut used, mut avail) = (0u128, 0u128);
        for mount in &self.cfg.mounts {
            let st = rustix::fs::statvfs(mount).map_err(|e| CollectError::Mount {
                path: mount.clone(),
                source: e.into(),
            })?;
            let frsize = u128::from(st.f_frsize.max(1));
            used += u128::from(st.f_blocks.saturating_sub(st.f_bfree)) * frsize;
            avail += u128::from(st.f_bavail) * frsize;
        }
        if used + avail == 0 {
            return Ok(0.0);
        }
        Ok((used as f64 / (used + avail) as f64 * 100.0).clamp(0.0, 100.0))
    }
}

fn read(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|source| CollectError::Unavailable {
        path: PathBuf::from(path),
        source,
    })
}

#[cfg(test)]
mod tests;
