//! Loading the kernel modules the host packed, in dependency order.
//!
//! The host writes `/lib/modules/load-order`, one module file per line with
//! dependencies first. Each is loaded with `finit_module(2)`; a `.ko.xz` is
//! passed as it is with `MODULE_INIT_COMPRESSED_FILE`, and the kernel
//! decompresses it (Debian's 6.12 has `CONFIG_MODULE_DECOMPRESS=y`).

use std::os::fd::AsRawFd;

const LOAD_ORDER: &str = "/lib/modules/load-order";
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// Loads every listed module; returns (module, outcome) pairs for the report.
pub fn load_all() -> Vec<(String, String)> {
    let Ok(list) = std::fs::read_to_string(LOAD_ORDER) else {
        return Vec::new();
    };
    list.lines()
        .filter(|l| !l.is_empty())
        .map(|path| (module_name(path), load(path)))
        .collect()
}

fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file).to_owned()
}

fn load(path: &str) -> String {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("cannot open: {e}"),
    };
    let flags = if path.ends_with(".xz") || path.ends_with(".zst") {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    let params = c"";
    // SAFETY: finit_module reads the module from the fd; params is a valid C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return "loaded".into();
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EEXIST) => "already loaded".into(),
        e => format!("failed: {e}"),
    }
}
