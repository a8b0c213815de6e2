//! # `cgroup.memory_peak`: `memory.peak` keeps the high-water mark, and each reader can reset its own
//!
//! **The feature.** The memory controller keeps, beside the memory charged
//! to a cgroup now (`memory.current`), the most it was ever charged: a
//! watermark the page counter raises on every charge and never lowers. v2
//! shows it as `memory.peak` since Linux 5.19; v1 had
//! `memory.max_usage_in_bytes`, which a write of `0` resets for everyone.
//! Since 6.12 `memory.peak` can be reset per open file: writing any
//! non-empty string to an open `memory.peak` sets that file description's
//! own mark to the usage at that moment, and from then on a read of it
//! shows the most charged *since the reset*. Every other file description,
//! and every fresh open, still shows the cgroup's lifetime peak. So two
//! tools can each measure their own interval without disturbing the other.
//!
//! **How the probe proves it.** The container gets a 256 MiB memory limit,
//! which on v2 is what makes the runtime enable the memory controller for
//! its cgroup (no controller, no `memory.*` files). The helper maps 20 MiB
//! of anonymous memory, writes to every page (each page is charged when it
//! is first written), and unmaps it (which uncharges it at once). Then:
//!
//! - the high-water mark: a fresh read of `memory.peak` is at least 20 MiB,
//!   while `memory.current` is below 20 MiB;
//! - the reset: the probe opens `memory.peak` twice, writes `reset` to the
//!   first file, and reads it again from the start: it must have dropped
//!   below 20 MiB (to about `memory.current`).
//!
//! **The control.** The second file, opened before the reset and never
//! written, and a third opened after it, must both still show at least
//! 20 MiB: the reset was the first file's alone.
//!
//! **Verdict.** FAIL when the peak does not cover what the helper touched,
//! when the reset file still shows 20 MiB, or when the reset changed what
//! another file shows; also when the kernel holds no memory limit for the
//! container (the runtime skipped it, and with it the memory controller).
//! Inconclusive when the freed memory stayed charged (then a reset could
//! not be told from none). Unsupported on cgroup v1; where `memory.peak` is
//! missing (ENOENT: before 5.19, so Debian's 5.10); and where it cannot be
//! written (before 6.12, so Debian's 6.1: the file's mode is 444, root may
//! still open it for writing, and the kernel refuses the write with
//! EINVAL; a refusal to open it for writing is no answer, and breaks the
//! probe).
//! This probe's property is the per-fd reset, so 6.1 is unsupported, not
//! a pass of half the property; but the high-water mark is checked first
//! there too: a peak below what the helper touched still FAILs, and the
//! unsupported reason says that the high-water mark held.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use runtime::spec::SwapLimit;

use crate::counters::require_v2;
use crate::inside::errno_name;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.memory_peak",
    property: "memory.peak keeps the cgroup's high-water mark, and a reset written to one open memory.peak changes what that file shows and no other",
    needs: Needs {
        config: &["MEMCG"],
        config_v1: &[],
        modules: &[],
        since: Some((6, 12)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime neither reads nor resets memory.peak; the memory limit it writes only enables the controller, and skipping it breaks the probe's setup, not the high-water mark",
    ),
    selftests: &["cgroup/test_memcg_current_peak"],
    run,
    inside,
};

/// The container's memory limit (memory plus swap too): far above what
/// the helper touches, so that nothing is reclaimed.
const LIMIT: u64 = 256 << 20;
/// What the helper touches and frees (its request), in MiB.
const TOUCHED_MIB: u64 = 20;
/// The same in bytes.
const TOUCHED: u64 = TOUCHED_MIB << 20;

/// The helper's first report: ready, nothing touched yet.
#[derive(Debug, Serialize, Deserialize)]
struct Ready;

/// The helper's second report: it touched this many MiB and unmapped them.
#[derive(Debug, Serialize, Deserialize)]
struct Freed {
    mib: u64,
}

/// What the reset did, by the kernel's account, once the kernel took it.
struct Reset {
    /// The reset file, read again from its start.
    same_file: u64,
    /// A file opened before the reset, read after it.
    other_file: u64,
    /// A file opened after the reset.
    fresh_file: u64,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    require_v2(
        "memory.peak is a cgroup v2 file (Linux 5.19, its per-fd reset 6.12); v1's memory.max_usage_in_bytes has one reset for every reader",
    )?;
    let mut spec = lab.spec(&TOUCHED_MIB);
    spec.limits.memory = Some(LIMIT);
    spec.limits.memory_swap = Some(SwapLimit::Total(LIMIT));
    let mut session = lab.start(spec, Role::Isolated)?;
    let Ready = session.receive()?;
    let counters = Counters::of(session.pid());
    let limit = counters.memory_limit()?;
    if limit.as_deref() != Some(LIMIT.to_string().as_str()) {
        session.finish()?;
        let held = limit.unwrap_or_else(|| "no memory controller for the cgroup".into());
        return Ok(Judgement {
            evidence: evidence!["memory limit in the kernel" => &held],
            control: Evidence::new(),
            control_separated: true,
            property: Property::Broken(format!(
                "the container asked for a {} MiB memory limit, and the kernel holds {held}: without it there is no memory.peak to read",
                LIMIT >> 20
            )),
        }
        .finding());
    }
    let peak_file = counters.dir("memory")?.join("memory.peak");
    let before = match read_fresh(&peak_file) {
        Ok(bytes) => bytes,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            session.finish()?;
            return Err(LabError::Unsupported(
                "reading memory.peak: ENOENT: the kernel has no memory.peak (Linux 5.19; its per-fd reset 6.12)".into(),
            ));
        }
        Err(e) => return Err(LabError::broken(format!("read memory.peak: {e}"))),
    };
    session.send_line("go")?;
    let Freed { mib } = session.receive()?;
    let measured = measure(&counters, &peak_file);
    session.finish()?;
    let Measured {
        current,
        peak,
        reset,
    } = measured?;

    let mut evidence = evidence![
        "memory limit in the kernel" => mib_shown(LIMIT),
        "memory.peak before the helper touched memory" => mib_shown(before),
        "helper touched, then unmapped" => format!("{mib} MiB"),
        "memory.current afterwards" => mib_shown(current),
        "memory.peak, a fresh read" => mib_shown(peak),
    ];
    if peak < TOUCHED {
        return Ok(Judgement {
            evidence,
            control: Evidence::new(),
            control_separated: true,
            property: Property::Broken(format!(
                "memory.peak shows {} after the helper touched {TOUCHED_MIB} MiB",
                mib_shown(peak)
            )),
        }
        .finding());
    }
    let reset = reset.map_err(|refused| {
        LabError::Unsupported(format!(
            "memory.peak has no per-fd reset here: {refused}; the reset came with Linux 6.12 (the high-water mark itself held: peak {} after {TOUCHED_MIB} MiB, current {})",
            mib_shown(peak),
            mib_shown(current)
        ))
    })?;
    evidence
        .saw("written to one open memory.peak", "reset")
        .saw("that file, read again", mib_shown(reset.same_file));
    let control = evidence![
        "a file opened before the reset, read after it" => mib_shown(reset.other_file),
        "a file opened after the reset" => mib_shown(reset.fresh_file),
    ];
    let others_kept = reset.other_file >= TOUCHED && reset.fresh_file >= TOUCHED;
    let property = if current >= TOUCHED {
        Property::Unclear(format!(
            "memory.current stayed at {} after the helper unmapped its {TOUCHED_MIB} MiB: a reset could not be told from none",
            mib_shown(current)
        ))
    } else if reset.same_file >= TOUCHED {
        Property::Broken(format!(
            "after writing reset to it, the file still shows {}",
            mib_shown(reset.same_file)
        ))
    } else if !others_kept {
        Property::Broken(format!(
            "a reset written to one file changed what the others show: {} and {}",
            mib_shown(reset.other_file),
            mib_shown(reset.fresh_file)
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence,
        control,
        control_separated: others_kept,
        property,
    }
    .finding())
}

/// What the kernel showed once the helper had freed its memory.
struct Measured {
    /// `memory.current`, in bytes.
    current: u64,
    /// A fresh read of `memory.peak`, in bytes.
    peak: u64,
    /// What the reset did, or the kernel's refusal of it.
    reset: Result<Reset, String>,
}

/// Reads `memory.current` and a fresh `memory.peak`, then resets one open
/// `memory.peak` and reads it and two others.
fn measure(counters: &Counters, peak_file: &Path) -> Result<Measured, LabError> {
    let current = counters.memory_usage()?;
    let peak = read_fresh(peak_file).or_broken("read memory.peak")?;
    let refused = |reason| {
        Ok(Measured {
            current,
            peak,
            reset: Err(reason),
        })
    };
    let mut other = File::open(peak_file).or_broken("open memory.peak")?;
    // cgroupfs lets root open even a 0444 file for writing (an old kernel
    // refuses at the write, below): a refused open is permissions or a
    // security module, which is no answer about the feature.
    let mut reset_file = match OpenOptions::new().read(true).write(true).open(peak_file) {
        Ok(file) => file,
        Err(e) => {
            return Err(LabError::broken(format!(
                "open memory.peak for writing: {e}"
            )))
        }
    };
    match reset_file.write_all(b"reset") {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return refused(refusal(peak_file, "writing reset", &e))
        }
        Err(e) => return Err(LabError::broken(format!("write reset to memory.peak: {e}"))),
    }
    let same_file = read_from_start(&mut reset_file).or_broken("read the reset memory.peak")?;
    let other_file = read_from_start(&mut other).or_broken("read memory.peak")?;
    let fresh_file = read_fresh(peak_file).or_broken("read memory.peak")?;
    Ok(Measured {
        current,
        peak,
        reset: Ok(Reset {
            same_file,
            other_file,
            fresh_file,
        }),
    })
}

/// What the kernel said when it refused a reset, with the file's mode.
fn refusal(peak_file: &Path, doing: &str, e: &std::io::Error) -> String {
    let mode = std::fs::metadata(peak_file)
        .map(|m| format!("{:o}", m.permissions().mode() & 0o777))
        .unwrap_or_else(|_| "?".into());
    format!("{doing}: {} (the file's mode is {mode})", errno_name(e))
}

/// `memory.peak` through a file opened for this read alone.
fn read_fresh(peak_file: &Path) -> std::io::Result<u64> {
    read_from_start(&mut File::open(peak_file)?)
}

/// The number an open cgroup file shows, read from its start.
fn read_from_start(file: &mut File) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a number of bytes: {text:?}"),
        )
    })
}

/// Bytes as MiB, to a tenth.
fn mib_shown(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Inside: reports ready, waits for the probe's go, then maps the MiB it was
/// asked for, writes to every page (so that each is charged to the
/// cgroup), unmaps them (so that they are uncharged), and reports.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    const PAGE: usize = 4096;
    let mib: u64 = helper.ask()?;
    helper.say(&Ready)?;
    helper.hear()?;
    let length = usize::try_from(mib << 20).context("the request is too large")?;
    // SAFETY: a new private anonymous mapping; nothing else refers to it.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error()).context("mmap");
    }
    let bytes = address.cast::<u8>();
    for offset in (0..length).step_by(PAGE) {
        // SAFETY: within the mapping; volatile so that the write happens.
        unsafe { bytes.add(offset).write_volatile(1) };
    }
    // SAFETY: the mapping made above, with its length; not used afterwards.
    if unsafe { libc::munmap(address, length) } != 0 {
        return Err(std::io::Error::last_os_error()).context("munmap");
    }
    helper.say(&Freed { mib })
}
