//! Named volumes: directories under the state root that outlive the
//! containers that mount them (docker's `local` driver).
//!
//! A volume is `volumes/NAME/_data`, which a container gets as a bind mount,
//! beside `volumes/NAME/volume.json` (when it was made, whether it is
//! anonymous, whether it was filled). `run` makes a volume it names on
//! first use and, as docker does, fills it with what the image holds at the
//! mount point: a new one, or one `volume create` left empty. A
//! volume in use by any container, running or not, is never removed; an
//! anonymous one (`-v /data`) goes with its container under `rm -v` or
//! `--rm`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{Record, Store};

/// The volumes under one state root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

/// What is known of one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Made for one container (`-v /data`), unnamed by its user.
    #[serde(default)]
    pub anonymous: bool,
    /// Given the image's files (or used without them): a volume that
    /// `volume create` made is filled at its first use, and only then.
    #[serde(default = "filled_by_default")]
    pub filled: bool,
}

/// A volume whose metadata predates the field was used already.
fn filled_by_default() -> bool {
    true
}

const META: &str = "volume.json";

/// What fills a new volume's data directory (given as a path).
pub type Fill<'a> = &'a dyn Fn(&Path) -> Result<()>;

impl Volumes {
    pub fn new(state_root: &Path) -> Volumes {
        Volumes {
            dir: state_root.join("volumes"),
        }
    }

    /// The directory containers mount.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Makes the volume `name` unless it exists, filled by `fill` (`None`:
    /// left empty, to be filled at its first use, as `volume create`
    /// leaves one); says whether this call filled it.
    ///
    /// The filling happens in a directory of its own that no container
    /// can reach. A new volume then takes its place in one rename: no
    /// container sees it half filled, or can put a link where the filling,
    /// as root, is about to write. Of two runs making one new volume at
    /// once, one wins and the other's copy is discarded. A volume made
    /// empty gets the filled entries moved in, none over one that is there
    /// already, into the same directory that containers may have mounted.
    pub fn create(&self, name: &str, anonymous: bool, fill: Option<Fill>) -> Result<bool> {
        crate::spec::check_volume_name("volume", name)?;
        self.make_top()?;
        let dir = self.dir.join(name);
        if dir.is_dir() {
            let meta = read_meta(&dir, name);
            return match fill.filter(|_| !meta.filled) {
                Some(fill) => self.fill_in_place(name, meta, fill),
                None => Ok(false),
            };
        }
        let staging = self.staging()?;
        let made = (|| {
            let staged = staging.join("_data");
            fs::create_dir(&staged).map_err(Error::io(format!("create {}", staged.display())))?;
            if let Some(fill) = fill {
                fill(&staged)?;
            }
            write_meta(
                &staging,
                &VolumeMeta {
                    name: name.to_owned(),
                    created: crate::store::now(),
                    anonymous,
                    filled: fill.is_some(),
                },
            )?;
            match fs::rename(&staging, &dir) {
                Ok(()) => Ok(fill.is_some()),
                // Another run made it first, and filled it.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                    Ok(false)
                }
                Err(e) => Err(Error::io(format!("create the volume {}", dir.display()))(e)),
            }
        })();
        let _ = crate::store::remove_tree_same_fs(&staging);
        made
    }

    /// Fills a volume that `volume create` made and no container has used
    /// yet: each filled entry is moved into its data directory from a
    /// descriptor, never over an entry there, never through a link.
    fn fill_in_place(&self, name: &str, mut meta: VolumeMeta, fill: Fill) -> Result<bool> {
        use nix::fcntl::{open, renameat2, OFlag, RenameFlags};
        use nix::sys::stat::Mode;
        let staging = self.staging()?;
        let moved = (|| {
            let staged = staging.join("_data");
            fs::create_dir(&staged).map_err(Error::io(format!("create {}", staged.display())))?;
            fill(&staged)?;
            let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let data = self.data(name);
            let into = open(&data, flags, Mode::empty())
                .map_err(Error::sys(format!("open {}", data.display())))?;
            let from = open(&staged, flags, Mode::empty())
                .map_err(Error::sys(format!("open {}", staged.display())))?;
            for entry in
                fs::read_dir(&staged).map_err(Error::io(format!("read {}", staged.display())))?
            {
                let entry = entry.map_err(Error::io(format!("read {}", staged.display())))?;
                let file = entry.file_name();
                match renameat2(
                    &from,
                    file.as_os_str(),
                    &into,
                    file.as_os_str(),
                    RenameFlags::RENAME_NOREPLACE,
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(Error::sys(format!("fill {}", data.display()))(e)),
                }
            }
            meta.filled = true;
            write_meta(&self.dir.join(name), &meta)?;
            Ok(true)
        })();
        let _ = crate::store::remove_tree_same_fs(&staging);
        moved
    }

    /// A new directory of `volumes/` that only root may enter, to fill.
    fn staging(&self) -> Result<PathBuf> {
        let staging = self.dir.join(format!(".new-{}", crate::store::new_id()));
        private_dir(&staging)?;
        Ok(staging)
    }

    /// `volumes/`, which others may cross but not list (a container under
    /// a user namespace reaches its own volumes through it).
    fn make_top(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.dir)
        {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::io(format!("create {}", self.dir.display()))(e)),
        }
    }

    /// Gives a volume's own directory to the root of a container under a
    /// user namespace, which must reach its data through it; no one else
    /// (no host user but root) can.
    pub fn give_to(&self, name: &str, map: crate::userns::IdMap) -> Result<()> {
        let dir = self.dir.join(name);
        nix::unistd::chown(
            &dir,
            Some(nix::unistd::Uid::from_raw(map.uid)),
            Some(nix::unistd::Gid::from_raw(map.gid)),
        )
        .map_err(Error::sys(format!(
            "give {} to the container's root",
            dir.display()
        )))
    }

    /// The volume `name`, or a not-found error naming it.
    pub fn get(&self, name: &str) -> Result<VolumeMeta> {
        crate::spec::check_volume_name("volume", name)?;
        let dir = self.dir.join(name);
        if !dir.join("_data").is_dir() {
            return Err(Error::not_found(
                "volume",
                name,
                "no such volume (`mydocker volume ls` lists them)",
            ));
        }
        Ok(read_meta(&dir, name))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<VolumeMeta> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut volumes: Vec<VolumeMeta> = entries
            .filter_map(|e| e.ok())
            // Not one being made or removed.
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.path().join("_data").is_dir())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some(read_meta(&e.path(), &name))
            })
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        volumes
    }

    /// Removes the volume `name` and what it holds. Under the store's
    /// lock, which a run holds while it records the volumes it mounts, the
    /// volume is refused if any container (running or not, or a record
    /// that does not parse, which might) names it, else moved out of the
    /// listing; the deletion follows, without the lock.
    pub fn remove(&self, store: &Store, name: &str) -> Result<()> {
        self.get(name)?;
        let doomed = {
            let _lock = store.lock()?;
            if let Some(user) = users(&store.list()?, name).first() {
                return Err(Error::conflict(
                    "volume",
                    name,
                    format!("it is in use by container {}: remove that first", user.name),
                ));
            }
            if let Some((id, _)) = store.damaged().first() {
                return Err(Error::conflict(
                    "volume",
                    name,
                    format!("the record of container {id} does not parse and may name it: remove that container (rm -f) first"),
                ));
            }
            self.take_out(name)?
        };
        self.delete(&doomed)
    }

    /// Moves a volume out of the listing, to be deleted.
    fn take_out(&self, name: &str) -> Result<PathBuf> {
        crate::spec::check_volume_name("volume", name)?;
        let dir = self.dir.join(name);
        let doomed = self
            .dir
            .join(format!(".removing-{name}-{}", crate::store::new_id()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => Ok(doomed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_found(
                "volume",
                name,
                "no such volume (`mydocker volume ls` lists them)",
            )),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()))(e)),
        }
    }

    fn delete(&self, doomed: &Path) -> Result<()> {
        match crate::store::remove_tree_same_fs(doomed) {
            // Another removal of the same leftover got there first.
            Err(_) if !doomed.exists() => Ok(()),
            other => other.map_err(Error::io(format!("remove {}", doomed.display()))),
        }
    }

    /// Removes the volumes no container names: the anonymous ones, or with
    /// `all` every one (docker's `volume prune [-a]`), and what an earlier
    /// removal left half done. Returns their names and the bytes freed.
    /// None while a record does not parse: it might name any volume.
    pub fn prune(&self, store: &Store, all: bool) -> Result<(Vec<String>, u64)> {
        let doomed = {
            let _lock = store.lock()?;
            if let Some((id, _)) = store.damaged().first() {
                return Err(Error::conflict(
                    "container",
                    id,
                    "its record does not parse and may name any volume: remove it (rm -f) before pruning volumes",
                ));
            }
            let records = store.list()?;
            let mut doomed = Vec::new();
            for volume in self.list() {
                if (all || volume.anonymous) && users(&records, &volume.name).is_empty() {
                    let path = self.take_out(&volume.name)?;
                    doomed.push((volume.name, path));
                }
            }
            doomed
        };
        let mut leftovers: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        let name = p.file_name().unwrap_or_default().to_string_lossy();
                        // A fill that was killed is an hour old, at least.
                        let stale = fs::metadata(p)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
                        name.starts_with(".removing-") || (name.starts_with(".new-") && stale)
                    })
                    .collect()
            })
            .unwrap_or_default();
        leftovers.retain(|p| !doomed.iter().any(|(_, d)| d == p));
        let mut freed = 0;
        let mut first_error = None;
        for path in doomed.iter().map(|(_, p)| p).chain(&leftovers) {
            freed += crate::image::tree_size(path);
            if let Err(e) = self.delete(path) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((doomed.into_iter().map(|(name, _)| name).collect(), freed)),
        }
    }

    /// Removes the anonymous volumes of a container being removed
    /// (`rm -v`, `--rm`) that no other container names.
    pub fn remove_anonymous_of(&self, store: &Store, record: &Record) -> Result<()> {
        if !record.volumes.iter().any(|v| v.anonymous) {
            return Ok(());
        }
        let _lock = store.lock()?;
        self.remove_anonymous_of_locked(store, record)
    }

    /// [`Volumes::remove_anonymous_of`] for a caller that holds the store's lock.
    pub fn remove_anonymous_of_locked(&self, store: &Store, record: &Record) -> Result<()> {
        let anonymous: Vec<&str> = record
            .volumes
            .iter()
            .filter(|v| v.anonymous)
            .filter_map(|v| v.name.as_deref())
            .collect();
        if anonymous.is_empty() {
            return Ok(());
        }
        let others: Vec<Record> = store
            .list()?
            .into_iter()
            .filter(|r| r.id != record.id)
            .collect();
        for name in anonymous {
            if users(&others, name).is_empty() && self.dir.join(name).is_dir() {
                let doomed = self.take_out(name)?;
                self.delete(&doomed)?;
            }
        }
        Ok(())
    }
}

/// The containers whose record names the volume `name`.
fn users<'a>(records: &'a [Record], name: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.volumes.iter().any(|v| v.name.as_deref() == Some(name)))
        .collect()
}

/// Writes a volume's metadata (replacing, never writing through, what is
/// there).
fn write_meta(dir: &Path, meta: &VolumeMeta) -> Result<()> {
    crate::files::write_atomic(
        &dir.join(META),
        &serde_json::to_vec_pretty(meta).expect("metadata serializes"),
    )
}

/// A directory only its owner may enter.
fn private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(Error::io(format!("create {}", path.display())))
}

/// A volume's metadata; one without (made by hand, or its write was cut
/// short) takes its directory's time.
fn read_meta(dir: &Path, name: &str) -> VolumeMeta {
    fs::read(dir.join(META))
        .ok()
        .and_then(|text| serde_json::from_slice::<VolumeMeta>(&text).ok())
        .filter(|meta| meta.name == name)
        .unwrap_or_else(|| VolumeMeta {
            name: name.to_owned(),
            created: fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
            anonymous: false,
            filled: true,
        })
}

/// docker's view of a volume (`volume inspect`, `inspect`).
pub fn inspect(volumes: &Volumes, meta: &VolumeMeta) -> serde_json::Value {
    serde_json::json!({
        "CreatedAt": crate::ident::rfc3339(meta.created),
        "Driver": "local",
        "Labels": if meta.anonymous {
            serde_json::json!({ "com.docker.volume.anonymous": "" })
        } else {
            serde_json::json!({})
        },
        "Mountpoint": volumes.data(&meta.name),
        "Name": meta.name,
        "Options": null,
        "Scope": "local",
    })
}
