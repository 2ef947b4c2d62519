use super::*;
use std::time::Duration;

const STAT_A: &str = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 100 0 100 700 100 0 0 0 0 0\nintr 1\n";
// +300 busy (user 200, system 100), +100 idle, +0 iowait: 75 % busy.
const STAT_B: &str = "cpu  300 0 200 800 100 0 0 0 0 0\ncpu0 300 0 200 800 100 0 0 0 0 0\nintr 1\n";
const MEMINFO: &str =
    "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n";

fn net_dev(eth_rx: u64, eth_tx: u64) -> String {
    format!(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
         lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0\n  \
         eth0: {eth_rx} 10 0 0 0 0 0 0 {eth_tx} 10 0 0 0 0 0 0\n"
    )
}

fn fake_proc(dir: &Path, stat: &str, rx: u64, tx: u64) {
    std::fs::create_dir_all(dir.join("net")).expect("mkdir");
    std::fs::create_dir_all(dir.join("sys/kernel")).expect("mkdir");
    std::fs::write(dir.join("stat"), stat).expect("write");
    std::fs::write(dir.join("meminfo"), MEMINFO).expect("write");
    std::fs::write(dir.join("net/dev"), net_dev(rx, tx)).expect("write");
    std::fs::write(dir.join("sys/kernel/hostname"), "build-host-7\n").expect("write");
}

#[test]
fn parsers_compute_the_documented_figures() {
    let a = parse_cpu(STAT_A).expect("stat");
    let b = parse_cpu(STAT_B).expect("stat");
    assert_eq!(
        a,
        CpuTimes {
            idle: 800,
            total: 1000
        }
    );
    assert_eq!(cpu_percent(&a, &b), 75.0);
    let (t, av) = parse_meminfo(MEMINFO).expect("meminfo");
    assert_eq!(memory_percent(t, av), 75.0);
    assert_eq!(parse_net_dev(&net_dev(1000, 500)), Ok(1500));
    // 12.5 MB in 2 s = 50 Mbit/s.
    assert_eq!(network_mbits(0, 12_500_000, 2.0), 50.0);
    assert_eq!(network_mbits(10, 5, 1.0), 0.0);
    assert!(parse_cpu("intr 1").expect_err("invalid").contains("cpu"));
    assert!(
        parse_meminfo("MemTotal: 10 kB")
            .expect_err("invalid")
            .contains("MemAvailable")
    );
}

#[tokio::test]
async fn collects_from_a_procfs_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_proc(dir.path(), STAT_A, 1_000_000, 0);
    let mut c = HostCollector::new(HostConfig {
        proc_root: dir.path().to_path_buf(),
        mounts: vec![dir.path().to_path_buf()],
        prime_interval: Duration::from_millis(5),
        ..HostConfig::default()
    })
    .expect("collector");
    assert_eq!(c.instance_id(), "build-host-7");

    // Priming reads the same counters twice: nothing moved.
    let first = c.collect(None, 1_771_500_309_000).await.expect("collect");
    let types: Vec<_> = first.iter().map(|e| e.metric_type).collect();
    assert_eq!(types, MetricType::ALL.to_vec());
    assert_eq!(first[0].value, 0.0);
    assert_eq!(first[1].value, 75.0);
    assert!(first[2].value > 0.0 && first[2].value <= 100.0);
    assert_eq!(first[3].value, 0.0);
    assert!(
        first
            .iter()
            .all(|e| e.instance_id == "build-host-7" && e.validate().is_ok())
    );

    // 1 MB more on eth0 (lo ignored) over at least 50 ms: at most 160 Mbit/s, above 0.
    fake_proc(dir.path(), STAT_B, 2_000_000, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = c.collect(None, 1_771_500_310_000).await.expect("collect");
    assert_eq!(second[0].value, 75.0);
    assert!(
        second[3].value > 0.0 && second[3].value <= 160.0,
        "{}",
        second[3].value
    );

    let only_mem = c
        .collect(Some(MetricType::MemoryUsage), 1_771_500_311_000)
        .await
        .expect("collect");
    assert_eq!(only_mem.len(), 1);
    assert_eq!(only_mem[0].metric_id, "mem-1771500311");
}

#[test]
fn missing_procfs_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = HostCollector::new(HostConfig {
        proc_root: dir.path().join("nope"),
        ..HostConfig::default()
    })
    .expect_err("no procfs");
    let msg = err.to_string();
    assert!(
        msg.contains("nope/stat") && msg.contains("synthetic"),
        "{msg}"
    );
}

#[tokio::test]
async fn real_host_reports_plausible_values() {
    if !Path::new("/proc/stat").exists() {
        return;
    }
    let mut c = HostCollector::new(HostConfig {
        prime_interval: Duration::from_millis(100),
        ..HostConfig::default()
    })
    .expect("linux host");
    let events = c
        .collect(None, shardline_core::time::now_ms())
        .await
        .expect("collect");
    assert_eq!(events.len(), 4);
    for e in &events {
        assert!(e.validate().is_ok(), "{e:?}");
    }
    assert!(events[1].value > 0.0, "memory in use on a running host");
    assert!(events[2].value > 0.0, "root filesystem holds files");
}

#[tokio::test]
async fn missing_mount_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_proc(dir.path(), STAT_A, 0, 0);
    let mut c = HostCollector::new(HostConfig {
        proc_root: dir.path().to_path_buf(),
        mounts: vec![dir.path().join("no-such-mount")],
        instance_id: Some("i-123456".into()),
        ..HostConfig::default()
    })
    .expect("collector");
    let err = c
        .collect(Some(MetricType::DiskUsage), 1_771_500_309_000)
        .await
        .expect_err("missing mount");
    let msg = err.to_string();
    assert!(
        msg.contains("no-such-mount") && msg.contains("mounts"),
        "{msg}"
    );
}
