//! The probe helper: runs as the container's command and reports, as
//! `key=value` lines on stdout, what the kernel shows from inside.
//!
//! It is linked statically so that a rootfs holding only this file is enough.
//! Commands that must be observed from the host while they run finish by
//! waiting for their stdin to close, which is how the probe releases them. A
//! failed read is reported as `error=…`, never as an empty finding.

use std::ffi::CString;
use std::io::Read;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    let number = |i: usize| -> u64 { arg(i).parse().unwrap_or_else(|_| usage()) };
    match arg(0) {
        "pid-view" => held(pid_view),
        "spawn-and-wait" => held(spawn_child),
        "mount-tmpfs" => mount_tmpfs(arg(1)),
        "escape" => held(|| escape(arg(1))),
        "hostname" => set_hostname(arg(1)),
        "ipc-list" => outcome("shm_keys", shm_keys()),
        "net-links" => held(|| outcome("links", net_links())),
        "busy" => held(|| busy(arg(1).parse().unwrap_or_else(|_| usage()))),
        "alloc" => held(|| alloc(number(1) as usize)),
        "fork-until-fail" => held(|| fork_until_fail(number(1) as u32)),
        "affinity" => held(|| outcome("cpus", affinity())),
        "cow" => held(|| cow(arg(1))),
        "tcp-echo" => tcp_echo(number(1) as u16, number(2) as u32),
        "tcp-send" => tcp_send(arg(1), number(2) as u16, arg(3)),
        "volume" => volume(arg(1), arg(2)),
        "status" => status(),
        "protected-paths" => protected_paths(&args[1..]),
        "keyctl" => {
            keyctl();
            status();
        }
        "touch" => held(|| touch(arg(1))),
        "cgroup" => held(|| {
            outcome(
                "cgroup",
                read("/proc/self/cgroup").map(|t| vec![t.trim().replace('\n', ";")]),
            )
        }),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: mydocker-probe-helper pid-view | spawn-and-wait | mount-tmpfs DIR | escape FILE | hostname NAME \
         | ipc-list | net-links | busy SECS | alloc MIB | fork-until-fail MAX | affinity | cow DIR \
         | volume RW_DIR RO_DIR | tcp-echo PORT COUNT | tcp-send ADDR PORT MESSAGE | cgroup \
         | status | protected-paths MASKED... -- READ_ONLY[=FILE]... | keyctl (then status) | touch FILE (held)"
    );
    std::process::exit(2)
}

/// Prints one observation. Rust's stdout is line-buffered, so the probe
/// sees each line at once even while we block on stdin afterwards.
fn report(key: &str, value: &str) {
    println!("{key}={value}");
}

/// Reports a list, or the error that kept us from reading it.
fn outcome(key: &str, result: Result<Vec<String>, String>) {
    match result {
        Ok(items) => report(key, &items.join(",")),
        Err(e) => report("error", &e),
    }
}

/// Runs `observe`, then stays alive until the probe has looked at us from
/// the host and closes our stdin.
fn held(observe: impl FnOnce()) {
    observe();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}

fn last_error() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Our pid and every pid the container's /proc lists.
fn pid_view() {
    report("pid", &std::process::id().to_string());
    let listing = std::fs::read_dir("/proc")
        .map_err(|e| format!("read /proc: {e}"))
        .map(|entries| {
            let mut pids: Vec<u32> = entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            pids.sort_unstable();
            pids.iter().map(u32::to_string).collect()
        });
    outcome("procs", listing);
}

/// Forks a child that sleeps forever and reports its pid.
fn spawn_child() {
    // SAFETY: the child only calls async-signal-safe pause().
    match unsafe { libc::fork() } {
        0 => loop {
            unsafe { libc::pause() };
        },
        -1 => report("error", &last_error()),
        child => report("child", &child.to_string()),
    }
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
    if rc != 0 {
        report("error", &format!("mount tmpfs on {dir}: {}", last_error()));
        return;
    }
    report("mounted", dir);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let wanted = line.trim();
    match read("/proc/self/mountinfo") {
        Ok(table) => {
            let seen = table.lines().any(|l| l.split(' ').nth(4) == Some(wanted));
            report("sees_host_mount", if seen { "yes" } else { "no" });
        }
        Err(e) => report("error", &e),
    }
}

/// Tries to reach `marker`, a host-only file, by its path and after the
/// classic chroot escape: chroot into a subdirectory while the working
/// directory stays outside it, climb `..` as far as it goes, and chroot there.
fn escape(marker: &str) {
    let found = |path: &str| std::fs::metadata(path).is_ok();
    report("direct", if found(marker) { "found" } else { "missing" });
    let _ = std::fs::create_dir_all("/tmp/.escape");
    let (sub, dotdot, dot) = (cstr("/tmp/.escape"), cstr(".."), cstr("."));
    // SAFETY: plain system calls on valid C strings.
    let escaped = unsafe {
        if libc::chroot(sub.as_ptr()) != 0 {
            Err(last_error())
        } else {
            for _ in 0..256 {
                libc::chdir(dotdot.as_ptr());
            }
            if libc::chroot(dot.as_ptr()) != 0 {
                Err(last_error())
            } else {
                Ok(found(marker))
            }
        }
    };
    match escaped {
        Ok(reached) => report("after_escape", if reached { "found" } else { "missing" }),
        Err(e) => report("error", &format!("chroot escape: {e}")),
    }
}

fn set_hostname(name: &str) {
    // SAFETY: the pointer and length describe `name`.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        report("error", &format!("sethostname: {}", last_error()));
        return;
    }
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    unsafe { libc::uname(&mut uts) };
    let nodename = unsafe { std::ffi::CStr::from_ptr(uts.nodename.as_ptr()) };
    report("nodename", &nodename.to_string_lossy());
}

/// The keys of the System V shared memory segments this IPC namespace holds.
fn shm_keys() -> Result<Vec<String>, String> {
    Ok(read("/proc/sysvipc/shm")?
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// The network devices of this network namespace.
fn net_links() -> Result<Vec<String>, String> {
    Ok(read("/proc/net/dev")?
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
        .collect())
}

/// Spins on the CPU for `secs` of wall-clock time, reading its own CPU
/// clock (`CLOCK_THREAD_CPUTIME_ID`, the sum the scheduler charges) on every
/// turn. Consecutive reads normally differ by a microsecond; a larger step
/// is CPU time the kernel charged while this loop made no progress, which
/// happens when a virtual CPU is stalled by its host. Reports the window,
/// the CPU time, and the largest such single charge.
fn busy(secs: f64) {
    let start = Instant::now();
    let window = Duration::from_secs_f64(secs);
    let cpu_start = thread_cpu_time();
    let (mut last, mut largest) = (cpu_start, Duration::ZERO);
    while start.elapsed() < window {
        let now = thread_cpu_time();
        largest = largest.max(now.saturating_sub(last));
        last = now;
    }
    report(
        "busy_seconds",
        &format!("{:.3}", start.elapsed().as_secs_f64()),
    );
    report(
        "cpu_seconds",
        &format!("{:.3}", last.saturating_sub(cpu_start).as_secs_f64()),
    );
    report("largest_charge_us", &largest.as_micros().to_string());
}

/// The CPU time the kernel has charged to this thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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
}

/// The CPUs this process may run on.
fn affinity() -> Result<Vec<String>, String> {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return Err(format!("sched_getaffinity: {}", last_error()));
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .map(|cpu| cpu.to_string())
        .collect())
}

/// Changes the image's files under `dir`: rewrites `existing`, deletes
/// `doomed`, creates `new`.
fn cow(dir: &str) {
    let steps = [
        (
            "rewrite",
            std::fs::write(format!("{dir}/existing"), "changed inside"),
        ),
        ("delete", std::fs::remove_file(format!("{dir}/doomed"))),
        (
            "create",
            std::fs::write(format!("{dir}/new"), "made inside"),
        ),
    ];
    for (step, result) in steps {
        if let Err(e) = result {
            report("error", &format!("{step} in {dir}: {e}"));
            return;
        }
    }
    report("changed", "3");
}

/// Checks a read-write volume both ways and a read-only one for EROFS.
fn volume(rw: &str, ro: &str) {
    let from_host = std::fs::read_to_string(format!("{rw}/from-host"))
        .map_or("missing".to_owned(), |t| t.trim().to_owned());
    report("host_file", &from_host);
    match std::fs::write(format!("{rw}/from-container"), "written inside") {
        Ok(()) => report("written", "yes"),
        Err(e) => report("written", &e.to_string()),
    }
    // The probe writes another file on the host now, and then says so.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    report(
        "later",
        if std::path::Path::new(&format!("{rw}/later")).exists() {
            "seen"
        } else {
            "missing"
        },
    );
    let attempt = std::fs::write(format!("{ro}/attempt"), "should not land");
    let outcome = match attempt {
        Ok(()) => "ok".to_owned(),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => "EROFS".to_owned(),
        Err(e) => e.to_string(),
    };
    report("ro_write", &outcome);
}

/// Echoes one line back on each of `count` TCP connections to `port`.
fn tcp_echo(port: u16, count: u32) {
    use std::io::{BufRead, Write};
    let listener = match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => return report("error", &format!("listen on {port}: {e}")),
    };
    report("listening", &port.to_string());
    for _ in 0..count {
        let Ok((stream, peer)) = listener.accept() else {
            return;
        };
        let mut line = String::new();
        let _ = std::io::BufReader::new(&stream).read_line(&mut line);
        let _ = (&stream).write_all(line.as_bytes());
        report("echoed_for", &peer.ip().to_string());
    }
}

/// Sends one line to ADDR:PORT and reports the reply, or why there was
/// none: `(no connection: E)` when the kernel refused or found no route,
/// `(timed out: E)` when a wait ran out (which a slow machine can cause).
fn tcp_send(address: &str, port: u16, message: &str) {
    use std::io::{ErrorKind, Read as _, Write};
    let target = match address.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port),
        Err(_) => return report("error", &format!("{address} is not an IP address")),
    };
    // A neighbour that never answered ARP (EHOSTUNREACH) is a wait that
    // ran out too: a stalled machine can cause it.
    let why = |e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::HostUnreachable => {
            format!("(timed out: {e})")
        }
        _ => format!("(no connection: {e})"),
    };
    match std::net::TcpStream::connect_timeout(&target, TCP_WAIT) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(TCP_WAIT));
            let _ = writeln!(stream, "{message}");
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut reply = String::new();
            match stream.read_to_string(&mut reply) {
                Ok(_) => report("reply", reply.trim()),
                Err(e) => report("reply", &why(e)),
            }
        }
        Err(e) => report("reply", &why(e)),
    }
}

/// How long a TCP connect or reply may take: generous, because on a loaded
/// or emulated machine the peer may need seconds to be scheduled.
const TCP_WAIT: Duration = Duration::from_secs(10);

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in helper arguments")
}

/// The security lines of `/proc/self/status`: capability sets, no_new_privs
/// and seccomp mode, each reported under its own name.
fn status() {
    match read("/proc/self/status") {
        Ok(text) => {
            for line in text.lines() {
                if let Some((key, value)) = line.split_once(':') {
                    if key.starts_with("Cap") || key == "NoNewPrivs" || key == "Seccomp" {
                        report(key, value.trim());
                    }
                }
            }
        }
        Err(e) => report("error", &e),
    }
}

/// Looks at each masked path, then (after `--`) at each read-only path.
///
/// A masked path is reported as `fs:FS;bytes:N` (N of at most its first
/// 4 KiB), `fs:FS;entries:N` or
/// `fs:FS;error:E`, where FS is `proc`, `sysfs` or `other`: the filesystem
/// that serves the path, by `statfs`, which tells the kernel's own file
/// from whatever covers it.
///
/// A read-only path, given as `PATH` or `PATH=FILE`, is reported as
/// `mount:ro|rw;open:R`: the mount's read-only flag by `statvfs`, and what
/// opening FILE (a writable file under PATH) for writing gave (`ok`, or the
/// errno's name, or `none` without a FILE). Nothing is ever written: the
/// kernel checks a mount's read-only flag when a file is opened for
/// writing, before the first byte, so the open alone is the proof, and a
/// file such as `/proc/sysrq-trigger` acts only on a write.
fn protected_paths(args: &[String]) {
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    for path in &args[..split] {
        let content = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
                .map(|d| format!("entries:{}", d.count()))
                .unwrap_or_else(|e| errno_of(&e)),
            // At most 4 KiB: enough to tell empty from not, and
            // `/proc/kcore` would otherwise be read for terabytes.
            Ok(_) => std::fs::File::open(path)
                .and_then(|f| {
                    let mut head = Vec::new();
                    f.take(4 << 10).read_to_end(&mut head).map(|_| head.len())
                })
                .map(|n| format!("bytes:{n}"))
                .unwrap_or_else(|e| errno_of(&e)),
            Err(e) => errno_of(&e),
        };
        report(path, &format!("fs:{};{content}", filesystem_of(path)));
    }
    for entry in args.get(split + 1..).unwrap_or_default() {
        let (path, file) = entry.split_once('=').unwrap_or((entry, ""));
        let opened = if file.is_empty() {
            "none".to_owned()
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .map_or_else(|e| errno_of(&e), |_| "ok".into())
        };
        report(path, &format!("mount:{};open:{opened}", mount_mode(path)));
    }
}

/// `proc`, `sysfs` or `other`: the filesystem serving `path`.
fn filesystem_of(path: &str) -> &'static str {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: statfs fills the struct we own from a valid C string.
    if unsafe { libc::statfs(cstr(path).as_ptr(), &mut fs) } != 0 {
        return "other";
    }
    match fs.f_type as i64 {
        PROC_SUPER_MAGIC => "proc",
        SYSFS_MAGIC => "sysfs",
        _ => "other",
    }
}

/// `ro` or `rw`: the read-only flag of the mount holding `path`, or the error.
fn mount_mode(path: &str) -> String {
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills the struct we own from a valid C string.
    if unsafe { libc::statvfs(cstr(path).as_ptr(), &mut vfs) } != 0 {
        return errno_of(&std::io::Error::last_os_error());
    }
    if vfs.f_flag & libc::ST_RDONLY != 0 {
        "ro"
    } else {
        "rw"
    }
    .to_owned()
}

/// Creates `file` (empty) and reports `touch=ok` or the errno's name.
fn touch(file: &str) {
    let result = std::fs::File::create(file).map(drop);
    report(
        "touch",
        &result.map_or_else(|e| errno_of(&e), |()| "ok".into()),
    );
}

/// Asks for a new anonymous session keyring: harmless, needs no
/// capability, and is on every seccomp deny list because the kernel's
/// keyrings are not namespaced. Reports `keyctl=ok` or the errno's name.
fn keyctl() {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for an anonymous keyring; nothing is read from us.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    let result = if id >= 0 {
        "ok".to_owned()
    } else {
        errno_of(&std::io::Error::last_os_error())
    };
    report("keyctl", &result);
}

/// The symbolic name of an error's errno (EPERM, EROFS, ...), so that
/// probes compare names rather than locale-dependent messages.
fn errno_of(e: &std::io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EDQUOT) => "EDQUOT",
        _ => return format!("error:{e}"),
    };
    format!("error:{name}")
}
