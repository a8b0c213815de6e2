//! A minimal root filesystem: Debian's static busybox and its applet links.
//!
//! `cargo xtask rootfs` builds it at [`default_path`]; the runtime's tests
//! build a private copy the same way.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::prereq::ensure_package;
pub use probes::lab::is_static_elf;

/// Where Debian's `busybox-static` package puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Where `cargo xtask rootfs` puts the busybox rootfs: `target/rootfs/busybox`.
pub fn default_path() -> PathBuf {
    crate::target_dir().join("rootfs").join("busybox")
}

/// Builds a busybox rootfs at `dest`, replacing whatever was there.
///
/// Installs `busybox-static` first when it is missing and we are root. The
/// tree is assembled beside `dest` and swapped into place in one step, so a
/// reader sees the old rootfs or the new one, never half of one or none.
pub fn build_busybox(dest: &Path) -> Result<(), String> {
    ensure_package("busybox-static", BUSYBOX)?;
    if !is_static_elf(Path::new(BUSYBOX))? {
        return Err(format!(
            "{BUSYBOX} is dynamically linked (the `busybox` package?): a container rootfs needs `busybox-static`"
        ));
    }
    let parent = dest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dest.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    let staging = parent.join(format!(".{}.partial", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let built = populate(&staging).and_then(|()| swap_into_place(&staging, dest));
    if built.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    built
}

/// Moves `staging` to `dest`. An existing `dest` is exchanged atomically
/// (`renameat2(RENAME_EXCHANGE)`) and the old tree, now at `staging`, removed.
fn swap_into_place(staging: &Path, dest: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    if !dest.exists() {
        return fs::rename(staging, dest)
            .map_err(|e| format!("move the rootfs into {}: {e}", dest.display()));
    }
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL");
    let (from, to) = (c(staging), c(dest));
    // SAFETY: both are valid C strings; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(format!(
            "swap the new rootfs into {}: {}",
            dest.display(),
            std::io::Error::last_os_error()
        ));
    }
    fs::remove_dir_all(staging).map_err(|e| format!("remove the old rootfs: {e}"))
}

fn populate(root: &Path) -> Result<(), String> {
    let err = |what: &str, path: &Path| {
        let path = path.display().to_string();
        let what = what.to_owned();
        move |e: std::io::Error| format!("{what} {path}: {e}")
    };
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev", "var",
        "home",
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(err("create", &path))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(err("chmod", &root.join("tmp")))?;
    let target = root.join("bin/busybox");
    fs::copy(BUSYBOX, &target).map_err(err("copy busybox to", &target))?;
    let listing = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("run {BUSYBOX} --list-full: {e}"))?;
    for applet in String::from_utf8_lossy(&listing.stdout).lines() {
        let link = root.join(applet);
        if applet.is_empty() || link.exists() {
            continue;
        }
        symlink("/bin/busybox", &link).map_err(err("link", &link))?;
    }
    for (file, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"),
    ] {
        let path = root.join(file);
        fs::write(&path, text).map_err(err("write", &path))?;
    }
    Ok(())
}
