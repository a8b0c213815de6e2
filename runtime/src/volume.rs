//! Named volumes: directories under the state root that outlive the
//! containers that mount them (docker's `local` driver).
//!
//! A volume is `volumes/NAME/_data`, which a container gets as a bind mount,
//! beside `volumes/NAME/volume.json` (when it was made, whether it is
//! anonymous). `run` makes a volume it names on first use and, as docker
//! does, fills a new one with what the image holds at the mount point. A
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
}

const META: &str = "volume.json";

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

    /// Makes the volume `name` unless it exists; says whether this call
    /// made it (two runs naming a new volume at once: only one makes it).
    pub fn create(&self, name: &str, anonymous: bool) -> Result<bool> {
        crate::spec::check_volume_name("volume", name)?;
        let dir = self.dir.join(name);
        fs::create_dir_all(&self.dir)
            .map_err(Error::io(format!("create {}", self.dir.display())))?;
        let made = match fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::io(format!("create {}", dir.display()))(e)),
        };
        // The data directory first: a volume listed has somewhere to mount.
        let data = dir.join("_data");
        match fs::create_dir(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("create {}", data.display()))(e)),
        }
        if made {
            let meta = VolumeMeta {
                name: name.to_owned(),
                created: crate::store::now(),
                anonymous,
            };
            crate::files::write_atomic(
                &dir.join(META),
                &serde_json::to_vec_pretty(&meta).expect("metadata serializes"),
            )?;
        }
        Ok(made)
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
            .filter(|e| e.path().join("_data").is_dir())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some(read_meta(&e.path(), &name))
            })
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        volumes
    }

    /// Removes the volume `name` and what it holds, under the store's lock,
    /// which a run holds while it records the volumes it mounts: a volume
    /// that any container (running or not) names is refused.
    pub fn remove(&self, store: &Store, name: &str) -> Result<()> {
        self.get(name)?;
        let _lock = store.lock()?;
        if let Some(user) = users(&store.list()?, name).first() {
            return Err(Error::conflict(
                "volume",
                name,
                format!("it is in use by container {}: remove that first", user.name),
            ));
        }
        self.remove_unlocked(name)
    }

    fn remove_unlocked(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        crate::store::remove_tree_same_fs(&dir)
            .map_err(Error::io(format!("remove {}", dir.display())))
    }

    /// Removes the volumes no container names: the anonymous ones, or with
    /// `all` every one (docker's `volume prune [-a]`). Returns their names.
    pub fn prune(&self, store: &Store, all: bool) -> Result<Vec<String>> {
        let _lock = store.lock()?;
        let records = store.list()?;
        let mut removed = Vec::new();
        for volume in self.list() {
            if (all || volume.anonymous) && users(&records, &volume.name).is_empty() {
                self.remove_unlocked(&volume.name)?;
                removed.push(volume.name);
            }
        }
        Ok(removed)
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
                self.remove_unlocked(name)?;
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
