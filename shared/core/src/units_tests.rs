use super::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sample {
    size: ByteSize,
    #[serde(with = "super::size")]
    cache: u64,
    #[serde(with = "super::duration")]
    timeout: Duration,
}

#[test]
fn sizes_parse_in_binary_and_decimal_units() {
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("512KiB"), Ok(512 << 10));
    assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    assert_eq!(parse_size("5MB"), Ok(5_000_000));
    assert_eq!(parse_size("64KB"), Ok(64_000));
    assert_eq!(parse_size("64kB"), Ok(64_000));
    assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("10B"), Ok(10));
    assert_eq!(parse_size(" 4 KiB "), Ok(4096));
    assert_eq!(parse_size("1.5KiB"), Ok(1536));
    assert_eq!(parse_size("0.1MB"), Ok(100_000));
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    assert_eq!("64MiB".parse::<ByteSize>(), Ok(ByteSize::mib(64)));
    assert_eq!(ByteSize::kib(4).bytes(), 4096);
}

#[test]
fn bad_sizes_name_the_text_and_the_accepted_forms() {
    for text in [
        "",
        "lots",
        "5 parsecs",
        "MiB",
        "-1MiB",
        "1.2.3KiB",
        ".5MiB",
        "18446744073709551616",
        "17179869184GiB",
    ] {
        let err = parse_size(text).expect_err(text).to_string();
        assert!(err.contains(&format!("`{text}`")), "{err}");
        assert!(err.contains("64MiB") && err.contains("KB"), "{err}");
    }
}

#[test]
fn sizes_display_in_the_largest_exact_binary_unit() {
    assert_eq!(ByteSize::mib(5).to_string(), "5MiB");
    assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
    assert_eq!(ByteSize(1536).to_string(), "1536B");
    assert_eq!(ByteSize(1000).to_string(), "1000B");
    assert_eq!(ByteSize(0).to_string(), "0B");
    assert_eq!(format_size(3 << 10), "3KiB");
}

#[test]
fn durations_parse_humantime_text_and_bare_seconds() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
    assert_eq!(parse_duration(" 7 "), Ok(Duration::from_secs(7)));
    assert_eq!(format_duration(Duration::from_millis(1500)), "1s 500ms");
    assert_eq!(format_duration(Duration::from_secs(60)), "1m");
    for text in ["", "5 parsecs", "soon", "-5s", "99999999999999999999"] {
        let err = parse_duration(text).expect_err(text).to_string();
        assert!(
            err.contains(&format!("`{text}` is not a duration")),
            "{err}"
        );
        assert!(err.contains("250ms"), "{err}");
    }
}

#[test]
fn serde_round_trips_and_accepts_numbers_for_sizes() {
    let s = Sample {
        size: ByteSize::mib(64),
        cache: 3 << 10,
        timeout: Duration::from_millis(1500),
    };
    let json = serde_json::to_string(&s).expect("serialize");
    assert_eq!(
        json,
        r#"{"size":"64MiB","cache":"3KiB","timeout":"1s 500ms"}"#
    );
    assert_eq!(serde_json::from_str::<Sample>(&json).expect("read"), s);
    let numbers: Sample =
        serde_json::from_str(r#"{"size":4096,"cache":12,"timeout":"5s"}"#).expect("numbers");
    assert_eq!(numbers.size, ByteSize(4096));
    assert_eq!(numbers.cache, 12);
    assert_eq!(numbers.timeout, Duration::from_secs(5));
}

#[test]
fn serde_errors_name_the_bad_text() {
    let err = serde_json::from_str::<Sample>(r#"{"size":"8 furlongs","cache":1,"timeout":"5s"}"#)
        .expect_err("bad size")
        .to_string();
    assert!(err.contains("`8 furlongs` is not a size"), "{err}");
    let err = serde_json::from_str::<Sample>(r#"{"size":1,"cache":"x","timeout":"5s"}"#)
        .expect_err("bad cache")
        .to_string();
    assert!(err.contains("`x` is not a size"), "{err}");
    let err = serde_json::from_str::<Sample>(r#"{"size":1,"cache":1,"timeout":"later"}"#)
        .expect_err("bad duration")
        .to_string();
    assert!(err.contains("`later` is not a duration"), "{err}");
    let err = serde_json::from_str::<Sample>(r#"{"size":true,"cache":1,"timeout":"5s"}"#)
        .expect_err("bad type")
        .to_string();
    assert!(err.contains("expected a size"), "{err}");
}

proptest! {
    #[test]
    fn every_displayed_size_reads_back(bytes in any::<u64>()) {
        let shown = ByteSize(bytes).to_string();
        prop_assert_eq!(parse_size(&shown), Ok(bytes));
    }

    #[test]
    fn every_formatted_duration_reads_back(secs in 0u64..10_000_000_000, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn binary_units_scale_by_1024(n in 0u64..(1 << 33)) {
        prop_assert_eq!(parse_size(&format!("{n}KiB")), Ok(n << 10));
        prop_assert_eq!(parse_size(&format!("{n}MiB")), Ok(n << 20));
        prop_assert_eq!(parse_size(&format!("{n}MB")), Ok(n * 1_000_000));
    }
}
