//! The image store: root filesystems imported from tarballs or committed
//! from containers, each unpacked once under `<root>/images/<name>/rootfs`
//! and only ever used as an overlay's read-only lower layer.

use std::fs;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{self, Record, Status, Store};

/// What the store knows about one image, in `image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Bytes of file content in the rootfs.
    pub size: u64,
    /// The tarball it was imported from, or `container <id>` for a commit.
    pub source: String,
    /// The command a container of this image runs when none is given
    /// (set by `commit`; an imported filesystem has none).
    pub cmd: Vec<String>,
}

/// The images under a state root.
pub struct Images {
    dir: PathBuf,
}

impl Images {
    pub fn new(root: &Path) -> Images {
        Images {
            dir: root.join("images"),
        }
    }

    /// The rootfs directory of an image.
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("rootfs")
    }

    /// Image names: 1 to 128 of `[a-zA-Z0-9_.-]`, so never a `/` or a space.
    pub fn check_name(name: &str) -> Result<()> {
        if !crate::parse::is_plain_name(name, 128) || name.starts_with('.') {
            return Err(Error::invalid(
                "image name",
                name,
                "expected 1 to 128 of letters, digits, '_', '.' and '-' (no '/', no spaces), not starting with '.'",
            ));
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<ImageMeta> {
        let path = self.dir.join(name).join("image.json");
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(Error::corrupt(&path)),
            Err(_) => Err(Error::not_found(
                "image",
                name,
                "no such image: `mydocker images` lists them, `mydocker import` adds one",
            )),
        }
    }

    /// Every image, oldest first.
    pub fn list(&self) -> Result<Vec<ImageMeta>> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut images: Vec<ImageMeta> = entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        images.sort_by_key(|i| i.created);
        Ok(images)
    }

    /// Unpacks a plain or gzip tar of a root filesystem as image `name`.
    pub fn import(&self, tarball: &Path, name: &str) -> Result<ImageMeta> {
        Self::check_name(name)?;
        let mut file =
            fs::File::open(tarball).map_err(Error::io(format!("open {}", tarball.display())))?;
        let mut magic = [0u8; 2];
        let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io(format!("read {}", tarball.display())))?;
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        self.unpack(reader, name, &tarball.display().to_string(), Vec::new())
            .map_err(|e| match e {
                Error::Io { source, .. } if source.kind() != std::io::ErrorKind::AlreadyExists => {
                    Error::invalid(
                        "tarball",
                        tarball.display().to_string(),
                        // The tar reader may quote the file's bytes, newlines and all.
                        format!(
                            "not a tar archive (plain or gzip) of a root filesystem: {}",
                            source.to_string().lines().next().unwrap_or_default()
                        ),
                    )
                }
                e => e,
            })
    }

    /// Unpacks a tar stream into a staging directory and renames it into
    /// place, so a half-imported image never appears under its name.
    fn unpack(
        &self,
        reader: Box<dyn Read + '_>,
        name: &str,
        source: &str,
        cmd: Vec<String>,
    ) -> Result<ImageMeta> {
        let final_dir = self.dir.join(name);
        if final_dir.exists() {
            return Err(Error::conflict(
                "image name",
                name,
                "an image of that name exists: remove it with `mydocker rmi` or pick another",
            ));
        }
        let staging = self
            .dir
            .join(format!(".partial-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let rootfs = staging.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(Error::io(format!("create {}", rootfs.display())))?;
        let result = (|| {
            let mut archive = tar::Archive::new(reader);
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.set_preserve_mtime(true);
            archive.set_unpack_xattrs(false);
            let mut entries = 0usize;
            for entry in archive.entries().map_err(Error::io("read the archive"))? {
                let mut entry = entry.map_err(Error::io("read the archive"))?;
                // unpack_in refuses paths that climb out of the rootfs.
                entry
                    .unpack_in(&rootfs)
                    .map_err(Error::io("unpack the archive"))?;
                entries += 1;
            }
            if entries == 0 {
                return Err(Error::io("read the archive")(std::io::Error::other(
                    "it holds no files",
                )));
            }
            let meta = ImageMeta {
                name: name.to_owned(),
                created: store::now(),
                size: tree_size(&rootfs),
                source: source.to_owned(),
                cmd,
            };
            fs::write(
                staging.join("image.json"),
                serde_json::to_vec_pretty(&meta).expect("serializes"),
            )
            .map_err(Error::io("write image.json"))?;
            fs::rename(&staging, &final_dir).map_err(Error::io(format!(
                "move the image into {}",
                final_dir.display()
            )))?;
            Ok(meta)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result
    }

    /// Removes an image. A running container's image is never removed; a
    /// stopped container's only with `force`.
    pub fn remove(&self, name: &str, force: bool, store: &Store) -> Result<()> {
        Self::check_name(name)?;
        self.get(name)?;
        // Under the store's lock, which a run holds while it records the
        // container: a run either is seen here using the image, or finds
        // it gone when it records (see `Store::create`).
        let lock = store.lock()?;
        let users: Vec<Record> = store
            .list()?
            .into_iter()
            .filter(|r| r.image == name)
            .collect();
        // One that its restart policy is starting again counts as running.
        if let Some(running) = users
            .iter()
            .find(|r| r.live_status() == Status::Running || r.is_restarting())
        {
            return Err(Error::conflict(
                "image",
                name,
                format!(
                    "container {} is running it: stop and remove it first",
                    running.name
                ),
            ));
        }
        if !users.is_empty() && !force {
            let names: Vec<&str> = users.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::conflict(
                "image",
                name,
                format!(
                    "containers use it ({}): remove them, or use rmi -f",
                    names.join(", ")
                ),
            ));
        }
        let dir = self.dir.join(name);
        let doomed = self.dir.join(format!(".removing-{name}"));
        fs::rename(&dir, &doomed).map_err(Error::io(format!("remove {}", dir.display())))?;
        drop(lock);
        fs::remove_dir_all(&doomed).map_err(Error::io(format!("remove {}", doomed.display())))
    }

    /// Removes what a killed `import`, `commit` or `rmi` left: a staging
    /// directory whose process is gone, a tombstone. Run by the commands
    /// that change images, not by every command.
    pub fn finish_interrupted(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let abandoned = if name.starts_with(".removing-") {
                true
            } else if let Some(rest) = name.strip_prefix(".partial-") {
                // `.partial-NAME-PID`: abandoned once PID is gone.
                rest.rsplit_once('-')
                    .and_then(|(_, pid)| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            } else {
                false
            };
            if abandoned && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Turns a container's filesystem (its image plus everything it wrote)
    /// into a new image. Works on running and on exited containers: the
    /// merged view is read through a fresh, read-only overlay of the
    /// container's upper layer stacked on its lower one. The calling process
    /// moves into a private mount namespace of its own to mount it, which
    /// requires that it have no other thread.
    pub fn commit(&self, store: &Store, record: &Record, name: &str) -> Result<ImageMeta> {
        Self::check_name(name)?;
        if self.dir.join(name).exists() {
            return Err(Error::conflict(
                "image name",
                name,
                "an image of that name exists: remove it with `mydocker rmi` or pick another",
            ));
        }
        // The view is mounted in a mount namespace of our own, made private,
        // so no other process ever sees it, and it vanishes with us even if
        // we are killed halfway. This needs a single-threaded caller.
        crate::rootfs::private_mount_namespace()
            .map_err(|f| Error::System(format!("commit: {}", f.message)))?;
        let upper = store.container_dir(&record.id).join("upper");
        let view = tempfile::Builder::new()
            .prefix(".commit-")
            .tempdir_in(store.root())
            .map_err(Error::io("create a directory for the commit"))?;
        let options = format!("lowerdir={}:{}", upper.display(), record.lower.display());
        nix::mount::mount(
            Some("overlay"),
            view.path(),
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(options.as_str()),
        )
        .map_err(Error::sys(format!(
            "mount the container's merged view ({options})"
        )))?;
        let result = (|| {
            // The tar stream is built in a thread and unpacked as it comes.
            let (reader, writer) = std::io::pipe().map_err(Error::io("create a pipe"))?;
            let root = view.path().to_owned();
            let builder = std::thread::spawn(move || -> std::io::Result<()> {
                let mut tar = tar::Builder::new(writer);
                tar.follow_symlinks(false);
                tar.append_dir_all(".", &root)?;
                tar.finish()
            });
            let meta = self.unpack(
                Box::new(reader),
                name,
                &format!("container {}", record.id),
                record.args.clone(),
            );
            let built = builder
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the tar writer panicked")));
            let meta = meta?;
            if let Err(e) = built {
                // The stream ended early (a socket, a file that vanished):
                // what was unpacked is not the container's filesystem.
                let _ = fs::remove_dir_all(self.dir.join(name));
                return Err(Error::io("read the container's filesystem")(e));
            }
            Ok(meta)
        })();
        let _ = nix::mount::umount2(view.path(), nix::mount::MntFlags::MNT_DETACH);
        result
    }
}

/// Bytes of regular-file content below `dir` (hard links counted each
/// time), on `dir`'s own file system only: a mount inside (a container's
/// root, if still mounted) is not its to count.
pub(crate) fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = dir.symlink_metadata() else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.dev() != top.dev() {
                continue;
            }
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
