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
        "read-paths" => read_paths(&args[1..]),
        "write" => write_file(arg(1), arg(2)),
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
         | status | read-paths PATH... | write PATH TEXT | keyctl (then status) | touch FILE (held)"
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

/// Spins on the CPU for `secs` of wall-clock time.
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

/// Sends one line to ADDR:PORT and reports the reply (or why there was none).
fn tcp_send(address: &str, port: u16, message: &str) {
    use std::io::{Read as _, Write};
    let target = match address.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port),
        Err(_) => return report("error", &format!("{address} is not an IP address")),
    };
    match std::net::TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = writeln!(stream, "{message}");
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            report("reply", reply.trim());
        }
        Err(e) => report("reply", &format!("(no connection: {e})")),
    }
}

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

/// For each path: `bytes:N` for a file read to its end, `entries:N` for a
/// directory, or the error (by errno name) that kept us out.
fn read_paths(paths: &[String]) {
    for path in paths {
        let seen = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
                .map(|d| format!("entries:{}", d.count()))
                .unwrap_or_else(|e| errno_of(&e)),
            Ok(_) => std::fs::read(path)
                .map(|b| format!("bytes:{}", b.len()))
                .unwrap_or_else(|e| errno_of(&e)),
            Err(e) => errno_of(&e),
        };
        report(path, &seen);
    }
}

/// Writes `text` to `path`; reports `write=ok` or the errno's name.
fn write_file(path: &str, text: &str) {
    let result = std::fs::write(path, text);
    report(
        "write",
        &result.map_or_else(|e| errno_of(&e), |()| "ok".into()),
    );
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
