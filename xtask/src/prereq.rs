//! Debian packages the project needs: found, installed as root, or asked for.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

/// Makes sure `package` is installed, judged by the file `provides` it ships.
///
/// As root it runs `apt-get install` and says so; as anyone else it returns
/// the exact command to run instead.
pub fn ensure_package(package: &str, provides: &str) -> Result<(), String> {
    if Path::new(provides).exists() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "{provides} is missing: install the Debian package {package} with `sudo apt-get install -y {package}`"
        ));
    }
    eprintln!("xtask: installing the Debian package {package} (for {provides})");
    // apt's chatter goes to stderr: stdout belongs to the command's own output.
    let to_stderr = || {
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(std::process::Stdio::from)
    };
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(to_stderr()?)
            .status()
    };
    let mut status = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        // A fresh machine has no package lists yet.
        if let Ok(stderr) = to_stderr() {
            let _ = Command::new("apt-get")
                .args(["update", "-q"])
                .stdout(stderr)
                .status();
        }
        status = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    }
    if !status.success() || !Path::new(provides).exists() {
        return Err(format!(
            "`apt-get install -y {package}` failed ({status}); {provides} is still missing"
        ));
    }
    Ok(())
}

/// True when running as root (and so allowed to install packages).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
