//! `system prune`: removes the exited containers, the networks no container
//! uses and, when asked, the images no container uses, as docker's does.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Kind, Result};
use crate::image::Images;
use crate::network::Networks;
use crate::store::{Status, Store};

/// What one prune removed, and what it could not.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Ids of the containers removed.
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub images: Vec<String>,
    /// Bytes of files removed: the containers' writable layers and images.
    pub reclaimed: u64,
    /// What was to go and did not, each failure in its own words. A thing
    /// found in use on the way (a network a new container joined) is not
    /// a failure: it is simply not pruned.
    pub failures: Vec<Error>,
    /// Records and networks whose files do not parse: left for `rm -f`
    /// and `network rm`, which can judge them one by one.
    pub damaged: Vec<Error>,
}

/// Prunes the store: containers first, so that the networks and images
/// they held are free to go in the same pass.
pub fn prune(store: &Store, images_too: bool) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    pruned
        .damaged
        .extend(store.damaged().into_iter().map(|(_, e)| e));
    for record in store.list()? {
        // An OCI container belongs to its caller (podman, conmon), which
        // deletes it when it is done; its exited state is not an end.
        if record.bundle.is_some() || record.live_status() != Status::Exited {
            continue;
        }
        let size = tree_size(&store.container_dir(&record.id));
        match crate::lifecycle::remove(store, &record.id, false) {
            Ok(()) => {
                pruned.reclaimed += size;
                pruned.containers.push(record.id);
            }
            Err(e) => keep_failure(&mut pruned.failures, e),
        }
    }
    let networks = Networks::new(store.root());
    pruned
        .damaged
        .extend(networks.damaged().into_iter().map(|(_, e)| e));
    for network in networks.list()? {
        match networks.remove(store, &network.name) {
            Ok(()) => pruned.networks.push(network.name),
            Err(e) => keep_failure(&mut pruned.failures, e),
        }
    }
    if images_too {
        let images = Images::new(store.root());
        for image in images.list()? {
            match images.remove(&image.name, false, store) {
                Ok(()) => {
                    pruned.reclaimed += image.size;
                    pruned.images.push(image.name);
                }
                Err(e) => keep_failure(&mut pruned.failures, e),
            }
        }
    }
    Ok(pruned)
}

/// Records a failure, unless it only says the thing is in use or gone.
fn keep_failure(failures: &mut Vec<Error>, e: Error) {
    if !matches!(e.kind(), Kind::Conflict | Kind::NotFound) {
        failures.push(e);
    }
}

/// Bytes of the regular files under `dir`, on its own file system only
/// (a container's root, if still mounted, is not its own to count).
fn tree_size(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.dev() != top.dev() {
                continue;
            }
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
