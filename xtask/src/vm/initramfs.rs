//! The guest's initramfs, a cpio "newc" archive: PID 1 at `/init`, the probe
//! runner and its helper in `/bin`, the kernel modules and their load order
//! in `/lib/modules`, and `/dev/console` so that PID 1 starts with stdio.
//! [`write_with`] adds files at paths of the caller's choosing (run mode's
//! command and its argv).

use std::io::Write;
use std::path::{Path, PathBuf};

use cpio::newc::{Builder, ModeFileType};

/// One file or directory of the archive.
enum Item {
    Dir(&'static str),
    HostDir(String),
    File {
        name: String,
        source: PathBuf,
    },
    Text {
        name: String,
        text: String,
    },
    Bytes {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
    CharDevice {
        name: &'static str,
        major: u32,
        minor: u32,
    },
}

/// A file [`write_with`] adds at a path of its own.
pub enum Extra {
    /// A host file, copied as an executable.
    File { name: String, source: PathBuf },
    /// Contents given here, with their permission bits.
    Bytes {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
}

impl Extra {
    fn name(&self) -> &str {
        match self {
            Extra::File { name, .. } | Extra::Bytes { name, .. } => name,
        }
    }
}

/// Writes the archive to `out`.
///
/// `host_files` are copied to the same paths inside (a dynamic program and
/// its libraries), with the directories that hold them.
pub fn write(
    out: &Path,
    init: &Path,
    binaries: &[PathBuf],
    modules: &[PathBuf],
    host_files: &[PathBuf],
) -> Result<(), String> {
    write_with(out, init, binaries, modules, host_files, Vec::new())
}

/// [`write`], and `extras` at their relative paths, with the directories
/// that hold them.
pub fn write_with(
    out: &Path,
    init: &Path,
    binaries: &[PathBuf],
    modules: &[PathBuf],
    host_files: &[PathBuf],
    extras: Vec<Extra>,
) -> Result<(), String> {
    let mut items = vec![
        Item::Dir("bin"),
        Item::Dir("dev"),
        Item::Dir("proc"),
        Item::Dir("sys"),
        Item::Dir("tmp"),
        Item::Dir("run"),
        Item::Dir("lib"),
        Item::Dir("lib/modules"),
        Item::CharDevice {
            name: "dev/console",
            major: 5,
            minor: 1,
        },
        Item::File {
            name: "init".into(),
            source: init.to_owned(),
        },
    ];
    for binary in binaries {
        let name = format!(
            "bin/{}",
            binary
                .file_name()
                .expect("binaries have names")
                .to_string_lossy()
        );
        items.push(Item::File {
            name,
            source: binary.clone(),
        });
    }
    let mut order = String::new();
    for module in modules {
        let name = format!(
            "lib/modules/{}",
            module
                .file_name()
                .expect("modules have names")
                .to_string_lossy()
        );
        order.push_str(&format!("/{name}\n"));
        items.push(Item::File {
            name,
            source: module.clone(),
        });
    }
    items.push(Item::Text {
        name: "lib/modules/load-order".into(),
        text: order,
    });
    let mut dirs = std::collections::BTreeSet::new();
    let extra_paths: Vec<PathBuf> = extras.iter().map(|e| PathBuf::from(e.name())).collect();
    for file in host_files.iter().chain(&extra_paths) {
        let relative = file.strip_prefix("/").unwrap_or(file);
        for ancestor in relative
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            dirs.insert(ancestor.to_string_lossy().into_owned());
        }
    }
    let made = [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "lib",
        "lib/modules",
    ];
    items.extend(
        dirs.into_iter()
            .filter(|d| !made.contains(&d.as_str()))
            .map(Item::HostDir),
    );
    for file in host_files {
        let name = file
            .strip_prefix("/")
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned();
        items.push(Item::File {
            name,
            source: file.clone(),
        });
    }
    for extra in extras {
        items.push(match extra {
            Extra::File { name, source } => Item::File { name, source },
            Extra::Bytes { name, data, mode } => Item::Bytes { name, data, mode },
        });
    }

    let file = std::fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    for (ino, item) in items.into_iter().enumerate() {
        let ino = ino as u32 + 1;
        let err = |e: std::io::Error| format!("write {}: {e}", out.display());
        match item {
            Item::Dir(name) => {
                let entry = Builder::new(name)
                    .ino(ino)
                    .nlink(2)
                    .mode(0o755)
                    .set_mode_file_type(ModeFileType::Directory);
                entry.write(&mut writer, 0).finish().map_err(err)?;
            }
            Item::HostDir(name) => {
                let entry = Builder::new(&name)
                    .ino(ino)
                    .nlink(2)
                    .mode(0o755)
                    .set_mode_file_type(ModeFileType::Directory);
                entry.write(&mut writer, 0).finish().map_err(err)?;
            }
            Item::CharDevice { name, major, minor } => {
                let entry = Builder::new(name)
                    .ino(ino)
                    .nlink(1)
                    .mode(0o600)
                    .set_mode_file_type(ModeFileType::Char)
                    .rdev_major(major)
                    .rdev_minor(minor);
                entry.write(&mut writer, 0).finish().map_err(err)?;
            }
            Item::File { name, source } => {
                let data = std::fs::read(&source)
                    .map_err(|e| format!("read {}: {e}", source.display()))?;
                let size = u32::try_from(data.len())
                    .map_err(|_| format!("{} is too large for cpio", source.display()))?;
                let entry = Builder::new(&name)
                    .ino(ino)
                    .nlink(1)
                    .mode(0o755)
                    .set_mode_file_type(ModeFileType::Regular);
                let mut w = entry.write(&mut writer, size);
                w.write_all(&data).map_err(err)?;
                w.finish().map_err(err)?;
            }
            Item::Text { name, text } => {
                let entry = Builder::new(&name)
                    .ino(ino)
                    .nlink(1)
                    .mode(0o644)
                    .set_mode_file_type(ModeFileType::Regular);
                let mut w = entry.write(&mut writer, text.len() as u32);
                w.write_all(text.as_bytes()).map_err(err)?;
                w.finish().map_err(err)?;
            }
            Item::Bytes { name, data, mode } => {
                let size = u32::try_from(data.len())
                    .map_err(|_| format!("{name} is too large for cpio"))?;
                let entry = Builder::new(&name)
                    .ino(ino)
                    .nlink(1)
                    .mode(mode)
                    .set_mode_file_type(ModeFileType::Regular);
                let mut w = entry.write(&mut writer, size);
                w.write_all(&data).map_err(err)?;
                w.finish().map_err(err)?;
            }
        }
    }
    cpio::newc::trailer(&mut writer).map_err(|e| format!("write {}: {e}", out.display()))?;
    writer
        .flush()
        .map_err(|e| format!("write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_lists_every_entry_in_order() {
        let dir = std::env::temp_dir().join(format!("xtask-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("init-bin");
        std::fs::write(&init, b"\x7fELF").unwrap();
        let module = dir.join("veth.ko");
        std::fs::write(&module, b"module").unwrap();
        let out = dir.join("initramfs.cpio");
        write(&out, &init, &[], &[module], &[]).unwrap();
        let mut archive = std::fs::File::open(&out).unwrap();
        let mut names = Vec::new();
        loop {
            let reader = cpio::NewcReader::new(archive).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            names.push(reader.entry().name().to_owned());
            archive = reader.finish().unwrap();
        }
        assert!(names.contains(&"dev/console".to_owned()) && names.contains(&"init".to_owned()));
        assert_eq!(names.last().unwrap(), "lib/modules/load-order");
        assert!(names.contains(&"lib/modules/veth.ko".to_owned()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extras_land_at_their_paths_with_their_directories() {
        let dir = std::env::temp_dir().join(format!("xtask-initramfs-x-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("init-bin");
        std::fs::write(&init, b"\x7fELF").unwrap();
        let out = dir.join("initramfs.cpio");
        let extras = vec![
            Extra::File {
                name: "run-cmd/prog".into(),
                source: init.clone(),
            },
            Extra::Bytes {
                name: "run-cmd/argv".into(),
                data: b"prog\0\xff\0".to_vec(),
                mode: 0o644,
            },
        ];
        write_with(&out, &init, &[], &[], &[], extras).unwrap();
        let mut archive = std::fs::File::open(&out).unwrap();
        let mut entries = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(archive).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let (name, mode) = (reader.entry().name().to_owned(), reader.entry().mode());
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
            entries.push((name, mode, data));
            archive = reader.finish().unwrap();
        }
        let find = |n: &str| entries.iter().position(|(name, ..)| name == n).unwrap();
        assert!(find("run-cmd") < find("run-cmd/prog"));
        assert_eq!(entries[find("run-cmd/prog")].1, 0o100755);
        let (_, mode, data) = &entries[find("run-cmd/argv")];
        assert_eq!((*mode, data.as_slice()), (0o100644, &b"prog\0\xff\0"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
