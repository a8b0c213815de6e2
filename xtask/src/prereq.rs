//! Debian packages the project needs: found, installed as root, or asked for.

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
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc_geteuid() } != 0 {
        return Err(format!(
            "{provides} is missing: install the Debian package {package} with `sudo apt-get install -y {package}`"
        ));
    }
    eprintln!("xtask: installing the Debian package {package} (for {provides})");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let mut status = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        // A fresh machine has no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        status = install().map_err(|e| format!("cannot run apt-get: {e}"))?;
    }
    if !status.success() || !Path::new(provides).exists() {
        return Err(format!(
            "`apt-get install -y {package}` failed ({status}); {provides} is still missing"
        ));
    }
    Ok(())
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
