//! Parsers for the values a user types: sizes, CPU counts, cpuset lists, env pairs.
//!
//! Nothing below the CLI parses strings; these functions turn text into the
//! plain numbers and sets that [`crate::spec::Spec`] holds.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};

/// Parses a memory size the way docker does (`go-units` `RAMInBytes`).
///
/// A decimal number, an optional space, then an optional unit `k`, `m`, `g`,
/// `t` or `p` (any case, powers of 1024), optionally followed by `i` and/or
/// `b`. `what` names the option in errors. `"512m"`, `"1.5g"`, `"64MiB"`, `"1024"` and `"10b"` are all valid.
pub fn parse_size(what: &'static str, text: &str) -> Result<u64> {
    let invalid = || {
        Error::invalid(
            what,
            text,
            "expected a number with an optional unit b, k, m, g, t or p, such as 512m or 1.5g",
        )
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut rest = unit.as_str();
    let multiplier: u64 = match rest.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            rest = &rest[1..];
            1024u64.pow("kmgtp".find(c).unwrap() as u32 + 1)
        }
        _ => 1,
    };
    rest = rest.strip_prefix('i').unwrap_or(rest);
    rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return Err(invalid());
    }
    let bytes = value * multiplier as f64;
    // The kernel takes limits as signed 64-bit numbers.
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(Error::invalid(
            what,
            text,
            "too large: the kernel's limit is 8 EiB",
        ));
    }
    Ok(bytes as u64)
}

/// Renders a byte count for humans, in the largest binary unit that keeps it readable.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for name in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = name;
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// A CPU allowance in billionths of a CPU, the unit docker's `--cpus` uses internally.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NanoCpus(pub u64);

impl NanoCpus {
    /// The CFS bandwidth period the runtime uses, in microseconds (the kernel default).
    pub const PERIOD_US: u64 = 100_000;
    /// The smallest quota the kernel accepts is 1 ms, so 0.01 CPU at a 100 ms period.
    pub const MIN: NanoCpus = NanoCpus(10_000_000);

    /// The quota, in microseconds per [`Self::PERIOD_US`], that grants this many CPUs.
    pub fn quota_us(self) -> u64 {
        self.0 * Self::PERIOD_US / 1_000_000_000
    }
}

impl fmt::Display for NanoCpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Parses `--cpus`: a positive decimal with at most nine fractional digits.
///
/// Range checks against the machine happen in [`crate::spec::Spec::validate`],
/// because they depend on the host.
pub fn parse_cpus(text: &str) -> Result<NanoCpus> {
    let invalid = |why: &str| Error::invalid("--cpus", text, why);
    let expected = "expected a positive decimal number of CPUs, such as 0.5 or 2";
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(invalid(expected));
    }
    if text.ends_with('.') {
        return Err(invalid(expected));
    }
    if frac.len() > 9 {
        return Err(invalid(
            "at most nine digits after the decimal point are supported",
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid(expected))?
    };
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| invalid(expected))?
    };
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| invalid(expected))?;
    if nanos == 0 {
        return Err(invalid("must be greater than 0"));
    }
    Ok(NanoCpus(nanos))
}

/// A set of CPU or memory-node numbers, as written in `cpuset.cpus` (`0-3,5`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct IdSet(pub BTreeSet<u32>);

impl IdSet {
    /// Parses the kernel's list format: comma-separated numbers and inclusive ranges.
    ///
    /// `what` names the option in errors, such as `--cpuset-cpus`.
    pub fn parse(what: &'static str, text: &str) -> Result<IdSet> {
        let invalid = || {
            Error::invalid(
                what,
                text,
                "expected a list of numbers and ranges, such as 0-3,5",
            )
        };
        let mut ids = BTreeSet::new();
        for part in text.split(',') {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let number = |s: &str| -> Result<u32> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                s.parse().map_err(|_| invalid())
            };
            let (first, last) = (number(first)?, number(last)?);
            if first > last || last - first > 65_536 {
                return Err(invalid());
            }
            ids.extend(first..=last);
        }
        Ok(IdSet(ids))
    }

    /// The members of `self` that `available` lacks.
    pub fn missing_from(&self, available: &IdSet) -> IdSet {
        IdSet(self.0.difference(&available.0).copied().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for IdSet {
    /// Writes the canonical form: ascending, with runs folded into ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.0.iter().copied().peekable();
        let mut first = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.peek() == Some(&(end + 1)) {
                end = ids.next().unwrap();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Whether `name` is 1 to `max` of `[a-zA-Z0-9_.-]`, the alphabet docker
/// allows in container, image and network names.
pub fn is_plain_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Parses `-e KEY=VALUE`. The key must be non-empty; the value may be empty or hold `=`.
pub fn parse_env(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(Error::invalid(
            "environment variable",
            text,
            "expected KEY=VALUE with a non-empty KEY",
        )),
    }
}

/// Parses an `--env-file` (named `file` in errors) as docker does: one
/// `KEY=VALUE` per line, taken literally (no quotes, no expansion); a bare
/// `KEY` takes the value `lookup` gives it (the caller's environment) and
/// is left out where it has none; blank lines and lines starting with `#`
/// are skipped.
pub fn parse_env_file(
    file: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    // A byte-order mark, as Windows editors write, is not part of a key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::invalid(
                "--env-file",
                format!("{file}, line {}: {line}", number + 1),
                "expected KEY=VALUE or KEY, with no whitespace in KEY",
            ));
        }
        if let Some(value) = value.or_else(|| lookup(key)) {
            pairs.push((key.to_owned(), value));
        }
    }
    Ok(pairs)
}

/// The range of `cpu.shares` values docker accepts (the kernel clamps to it).
pub const SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;

/// Converts cgroup v1 `cpu.shares` (2..=262144, default 1024) to v2 `cpu.weight` (1..=10000).
///
/// This is the linear map the OCI runtimes use, so the same `--cpu-shares`
/// gives the same relative weight under runc, crun and mydocker. The default
/// 1024 shares becomes weight 39, not the v2 default 100: a straight copy of the
/// number would be out of range, and a rescale around 1024 would disagree with
/// every other runtime.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(*SHARES_RANGE.start(), *SHARES_RANGE.end());
    1 + (shares - 2) * 9_999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_env_file_is_read_as_docker_reads_it() {
        let text =
            "\u{feff}A=1\n# a comment\r\n\n  B= two words \nC=x=y\r\nFROM_HOST\nUNSET\nEMPTY=\n";
        let lookup = |key: &str| (key == "FROM_HOST").then(|| "host".to_owned());
        let pairs = parse_env_file("vars.env", text, lookup).unwrap();
        let expected = [
            ("A", "1"),
            ("B", " two words "),
            ("C", "x=y"),
            ("FROM_HOST", "host"),
            ("EMPTY", ""),
        ];
        assert_eq!(
            pairs,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
    }

    #[test]
    fn a_bad_env_file_line_is_named_with_its_number() {
        for text in [
            "OK=1\nBAD KEY=1\n",
            "OK=1\n=value\n",
            "OK=1\nB =1\n",
            "OK=1\nBARE \n",
        ] {
            let error = parse_env_file("vars.env", text, |_| None)
                .unwrap_err()
                .to_string();
            assert!(error.contains("vars.env, line 2"), "{error}");
        }
    }

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("--memory", "1024").unwrap(), 1024);
        assert_eq!(parse_size("--memory", "10b").unwrap(), 10);
        assert_eq!(parse_size("--memory", "4k").unwrap(), 4096);
        assert_eq!(parse_size("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("--memory", "512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("--memory", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("--memory", "64mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("--memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("--memory", "2 g").unwrap(), 2 << 30);
        assert_eq!(parse_size("--memory", "1t").unwrap(), 1 << 40);
        assert!(parse_size("--memory", "8191p").is_ok());
        let too_large = parse_size("--memory", "9000p").unwrap_err().to_string();
        assert!(too_large.contains("too large"), "{too_large}");
        for bad in [
            "", "m", "-1m", "1x", "1mm", "1.m", ".5m", "1..2m", "1m ", "1  m", "1e3",
        ] {
            assert!(
                parse_size("--memory", bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn size_errors_name_the_value() {
        let err = parse_size("--memory", "12q").unwrap_err().to_string();
        assert!(err.contains("\"12q\""), "{err}");
        assert!(err.contains("512m"), "{err}");
    }

    #[test]
    fn sizes_format_for_humans() {
        assert_eq!(format_size(512), "512B");
        assert_eq!(format_size(32 << 20), "32MiB");
        assert_eq!(format_size(3 << 29), "1.5GiB");
    }

    #[test]
    fn cpus_parse_to_nanos_and_quota() {
        assert_eq!(parse_cpus("0.25").unwrap(), NanoCpus(250_000_000));
        assert_eq!(parse_cpus("0.25").unwrap().quota_us(), 25_000);
        assert_eq!(parse_cpus("2").unwrap().quota_us(), 200_000);
        assert_eq!(parse_cpus(".5").unwrap(), NanoCpus(500_000_000));
        for bad in [
            "",
            ".",
            "0",
            "0.0",
            "-1",
            "1.",
            "abc",
            "1.2.3",
            "0.0000000001",
            "+1",
        ] {
            assert!(parse_cpus(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn cpusets_parse_and_print_canonically() {
        let set = IdSet::parse("--cpuset-cpus", "3,0-1,1").unwrap();
        assert_eq!(set.0.iter().copied().collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(set.to_string(), "0-1,3");
        for bad in ["", ",", "1-", "-1", "3-1", "a", "1,,2", " 1"] {
            assert!(
                IdSet::parse("--cpuset-cpus", bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn env_needs_an_equals_sign() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("A=").unwrap(), ("A".into(), "".into()));
        assert!(parse_env("A").is_err());
        assert!(parse_env("=x").is_err());
    }

    #[test]
    fn shares_map_to_weights_like_the_oci_runtimes() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    proptest! {
        #[test]
        fn whole_sizes_round_trip(n in 0u64..1 << 40, unit in 0usize..5) {
            let (suffix, mult) = [("", 1u64), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("KiB", 1 << 10)][unit];
            prop_assume!(n.checked_mul(mult).is_some_and(|b| b < 1 << 53));
            prop_assert_eq!(parse_size("--memory", &format!("{n}{suffix}")).unwrap(), n * mult);
        }

        #[test]
        fn size_parser_never_panics(text in "\\PC{0,12}") {
            let _ = parse_size("--memory", &text);
        }

        #[test]
        fn cpus_round_trip_through_display(nanos in 1u64..1_000_000_000_000) {
            let cpus = NanoCpus(nanos);
            prop_assert_eq!(parse_cpus(&cpus.to_string()).unwrap(), cpus);
        }

        #[test]
        fn cpus_parser_never_panics(text in "[0-9.+-]{0,14}") {
            let _ = parse_cpus(&text);
        }

        #[test]
        fn cpusets_round_trip(ids in proptest::collection::btree_set(0u32..256, 1..40)) {
            let set = IdSet(ids);
            prop_assert_eq!(IdSet::parse("--cpuset-cpus", &set.to_string()).unwrap(), set);
        }

        #[test]
        fn cpuset_parser_never_panics(text in "[0-9,-]{0,16}") {
            let _ = IdSet::parse("--cpuset-cpus", &text);
        }

        #[test]
        fn env_round_trips(key in "[A-Za-z_][A-Za-z0-9_]{0,10}", value in "\\PC{0,20}") {
            let text = format!("{key}={value}");
            prop_assert_eq!(parse_env(&text).unwrap(), (key, value));
        }

        #[test]
        fn weight_is_monotonic_and_in_range(a in SHARES_RANGE, b in SHARES_RANGE) {
            let (lo, hi) = (a.min(b), a.max(b));
            let (wl, wh) = (shares_to_weight(lo), shares_to_weight(hi));
            prop_assert!((1..=10_000).contains(&wl) && (1..=10_000).contains(&wh));
            prop_assert!(wl <= wh);
        }
    }
}
