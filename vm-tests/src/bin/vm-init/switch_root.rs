//! Leaving the initramfs: `pivot_root(2)` refuses to move the initial
//! rootfs (see its NOTES), and containers inside the VM need pivot_root. So,
//! as `switch_root` does, PID 1 copies its files onto a tmpfs, moves that
//! mount over `/` and chroots into it; from then on `/` is an ordinary mount.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot};

const NEW_ROOT: &str = "/newroot";

pub fn onto_tmpfs() -> io::Result<()> {
    fs::create_dir_all(NEW_ROOT)?;
    mount(
        Some("tmpfs"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )
    .map_err(io::Error::from)?;
    for entry in fs::read_dir("/")? {
        let entry = entry?;
        if entry.file_name() != "newroot" {
            copy_tree(&entry.path(), &Path::new(NEW_ROOT).join(entry.file_name()))?;
        }
    }
    chdir(NEW_ROOT).map_err(io::Error::from)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(io::Error::from)?;
    chroot(".").map_err(io::Error::from)?;
    chdir("/").map_err(io::Error::from)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(from)?, to)
    } else if meta.is_dir() {
        fs::create_dir_all(to)?;
        fs::set_permissions(to, meta.permissions())?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if meta.is_file() {
        fs::copy(from, to).map(drop)
    } else {
        // Device nodes (the initramfs's /dev/console): devtmpfs replaces them.
        Ok(())
    }
}
