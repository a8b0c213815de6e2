//! `system prune`: removes the exited containers, the networks no container
//! uses and, when asked, the images no container uses, as docker's does.

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
    /// Images were asked for but kept: a damaged record may use any.
    pub images_kept: bool,
}

/// Prunes the store: containers first, so that the networks and images
/// they held are free to go in the same pass.
pub fn prune(store: &Store, images_too: bool) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    pruned
        .damaged
        .extend(store.damaged().into_iter().map(|(_, e)| e));
    // A damaged record may name any image: none is known to be unused.
    let unknown_users = !pruned.damaged.is_empty();
    for record in store.list()? {
        // An OCI container belongs to its caller (podman, conmon), which
        // deletes it when it is done; its exited state is not an end.
        // Nor is one that its restart policy is starting again.
        if record.bundle.is_some()
            || record.live_status() != Status::Exited
            || record.is_restarting()
        {
            continue;
        }
        let size = crate::image::tree_size(&store.container_dir(&record.id));
        match crate::lifecycle::remove(store, &record.id, false, false) {
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
    pruned.images_kept = images_too && unknown_users;
    if images_too && !unknown_users {
        let images = Images::new(store.root());
        images.finish_interrupted();
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
