//! The probe helper: runs as the container's command and reports, as
//! `key=value` lines on stdout, what the kernel shows from inside.
//!
//! It is linked statically so that a rootfs holding only this file is enough.
//! Commands that must be observed from the host while they run finish by
//! waiting for their stdin to close, which is how the probe releases them.

use std::ffi::CString;
use std::io::Read;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    match arg(0) {
        "pid-view" => pid_view(),
        "spawn-and-wait" => spawn_and_wait(),
        "mount-tmpfs" => mount_tmpfs(arg(1)),
        "escape" => escape(arg(1)),
        "hostname" => set_hostname(arg(1)),
        "ipc-list" => report("shm_keys", &shm_keys().join(",")),
        "net-links" => report("links", &net_links().join(",")),
        "busy" => busy(arg(1).parse().unwrap_or_else(|_| usage())),
        "alloc" => alloc(arg(1).parse().unwrap_or_else(|_| usage())),
        "fork-until-fail" => fork_until_fail(arg(1).parse().unwrap_or_else(|_| usage())),
        "affinity" => report("cpus", &affinity().join(",")),
        "cgroup" => report(
            "cgroup",
            &read("/proc/self/cgroup").trim().replace('\n', ";"),
        ),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: mydocker-probe-helper pid-view | spawn-and-wait | mount-tmpfs DIR | escape FILE | hostname NAME \
         | ipc-list | net-links | busy SECS | alloc MIB | fork-until-fail MAX | affinity | cgroup"
    );
    std::process::exit(2)
}

/// Prints one observation. Each line is flushed at once: the probe may be
/// waiting for it while we block on stdin.
fn report(key: &str, value: &str) {
    println!("{key}={value}");
}

/// Blocks until the probe closes our stdin.
fn wait_for_release() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("error: {e}"))
}

fn errno_name() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Our pid and every pid the container's /proc lists.
fn pid_view() {
    report("pid", &std::process::id().to_string());
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    report(
        "procs",
        &pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    wait_for_release();
}

/// Forks a child that sleeps forever, reports its pid, and waits.
fn spawn_and_wait() {
    // SAFETY: the child only calls async-signal-safe pause().
    match unsafe { libc::fork() } {
        0 => loop {
            unsafe { libc::pause() };
        },
        -1 => report("error", &errno_name()),
        child => report("child", &child.to_string()),
    }
    wait_for_release();
}

/// Mounts a tmpfs at `dir`, then waits for the probe to name a host mount
/// point on stdin and says whether our mount table shows it.
fn mount_tmpfs(dir: &str) {
    let _ = std::fs::create_dir_all(dir);
    let (src, target, fstype) = (cstr("probe-tmpfs"), cstr(dir), cstr("tmpfs"));
    // SAFETY: all pointers are valid C strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    report("mounted", if rc == 0 { dir } else { "error" });
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let wanted = line.trim();
    let seen = read("/proc/self/mountinfo")
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted));
    report("sees_host_mount", if seen { "yes" } else { "no" });
}

/// Tries to open `marker`, a host-only file, directly and after the classic
/// chroot escape: chroot into a subdirectory while keeping the working
/// directory outside it, climb `..` as far as it goes, and chroot there.
fn escape(marker: &str) {
    let found = |path: &str| std::fs::metadata(path).is_ok();
    report("direct", if found(marker) { "found" } else { "missing" });
    report(
        "mounts_visible",
        &read("/proc/self/mountinfo").lines().count().to_string(),
    );
    let _ = std::fs::create_dir_all("/tmp/.escape");
    let (sub, dotdot, dot) = (cstr("/tmp/.escape"), cstr(".."), cstr("."));
    // SAFETY: plain syscalls on valid C strings.
    let escaped = unsafe {
        if libc::chroot(sub.as_ptr()) != 0 {
            Err(errno_name())
        } else {
            for _ in 0..256 {
                libc::chdir(dotdot.as_ptr());
            }
            if libc::chroot(dot.as_ptr()) != 0 {
                Err(errno_name())
            } else {
                Ok(found(marker))
            }
        }
    };
    let verdict = match escaped {
        Ok(true) => "found".to_owned(),
        Ok(false) => "missing".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    report("after_escape", &verdict);
}

fn set_hostname(name: &str) {
    // SAFETY: the pointer and length describe `name`.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        report("error", &errno_name());
    }
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    unsafe { libc::uname(&mut uts) };
    let nodename = unsafe { std::ffi::CStr::from_ptr(uts.nodename.as_ptr()) };
    report("nodename", &nodename.to_string_lossy());
}

/// The keys of the System V shared memory segments this IPC namespace holds.
fn shm_keys() -> Vec<String> {
    read("/proc/sysvipc/shm")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The network interfaces this network namespace holds.
fn net_links() -> Vec<String> {
    read("/proc/net/dev")
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
        .collect()
}

/// Spins on the CPU for `secs` of wall-clock time, then waits.
fn busy(secs: f64) {
    let start = Instant::now();
    let window = Duration::from_secs_f64(secs);
    let mut spins: u64 = 0;
    while start.elapsed() < window {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
    report(
        "busy_seconds",
        &format!("{:.3}", start.elapsed().as_secs_f64()),
    );
    wait_for_release();
}

/// After the probe says go, allocates `mib` MiB and writes to every page so
/// that each one is charged to the memory cgroup.
fn alloc(mib: usize) {
    const PAGE: usize = 4096;
    // The probe reads the cgroup's counters before the first page is touched.
    report("ready", "1");
    let mut go = String::new();
    let _ = std::io::stdin().read_line(&mut go);
    let mut chunks = Vec::new();
    for _ in 0..mib {
        let mut chunk = vec![0u8; 1 << 20];
        for offset in (0..chunk.len()).step_by(PAGE) {
            chunk[offset] = 1;
        }
        chunks.push(std::hint::black_box(chunk));
    }
    report("touched_mib", &mib.to_string());
    wait_for_release();
}

/// Forks children that sleep until fork fails or `max` are running.
fn fork_until_fail(max: u32) {
    let mut forked = 0;
    let mut failure = "none".to_owned();
    while forked < max {
        // SAFETY: the child only calls async-signal-safe pause().
        match unsafe { libc::fork() } {
            0 => loop {
                unsafe { libc::pause() };
            },
            -1 => {
                let err = std::io::Error::last_os_error();
                failure = if err.raw_os_error() == Some(libc::EAGAIN) {
                    "EAGAIN".into()
                } else {
                    err.to_string()
                };
                break;
            }
            _ => forked += 1,
        }
    }
    report("forked", &forked.to_string());
    report("fork_error", &failure);
    wait_for_release();
}

/// The CPUs this process may run on.
fn affinity() -> Vec<String> {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return vec![format!("error: {}", errno_name())];
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .map(|cpu| cpu.to_string())
        .collect()
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in helper arguments")
}
