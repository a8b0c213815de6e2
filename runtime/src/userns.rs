//! User namespaces: which host ids a container's ids stand for, where those
//! ids come from, and writing the maps that make it so.
//!
//! In a user namespace, uid 0 can be an ordinary uid on the host. The kernel
//! keeps each process's real (host) ids and translates through
//! `/proc/<pid>/uid_map` and `gid_map`: a line `0 100000 65536` says ids 0..65535
//! inside are 100000..165535 outside. A file the container's root creates is
//! owned by 100000 on disk. The maps can be written once, by a process with
//! the right privileges over the parent namespace, which is why launch writes
//! them before it releases init.
//!
//! `--userns=auto` gives each container its own block of 65536 ids, taken
//! from the ranges `/etc/subuid` and `/etc/subgid` list for the user
//! `mydocker`, or else from [`DEFAULT_POOL`]. A block is claimed host-wide
//! (a file in [`CLAIMS`]) for as long as its container exists, so two
//! containers never share ids, even when they keep their state in different
//! `--root` directories.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use crate::spec::userns::{IdMap, IdRange, Mapping, UserNs};

/// Ids per container: the whole 16-bit range most images assume.
pub const BLOCK: u32 = 65536;

/// The user whose subordinate ranges mydocker uses (docker's is `dockremap`).
pub const SUBORDINATE_USER: &str = "mydocker";

/// Where ids come from when `/etc/subuid` has no `mydocker` line: 64 blocks
/// from 1,000,000,000, far above the 100000+ ranges `useradd` hands out.
pub const DEFAULT_POOL: IdRange = IdRange {
    start: 1_000_000_000,
    count: 64 * BLOCK,
};

/// Where blocks are claimed: one file per block, named by its first host
/// uid, holding the claiming container's state directory. It is on tmpfs,
/// so claims end with a reboot, as running containers do; the blocks of
/// exited containers kept across a reboot are still avoided within their
/// own state root, whose records say which they hold.
pub const CLAIMS: &str = "/run/mydocker/userns";

/// The subordinate id files, `/etc/subuid` and `/etc/subgid` unless
/// `MYDOCKER_SUBUID` and `MYDOCKER_SUBGID` name others.
pub fn id_files() -> (PathBuf, PathBuf) {
    let pick = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    (
        pick("MYDOCKER_SUBUID", "/etc/subuid"),
        pick("MYDOCKER_SUBGID", "/etc/subgid"),
    )
}

/// The ranges `file` lists for [`SUBORDINATE_USER`] (`name:start:count`
/// lines), or [`DEFAULT_POOL`] when the file is missing or has none.
pub fn read_pool(file: &Path) -> Result<Vec<IdRange>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![DEFAULT_POOL]),
        Err(e) => return Err(Error::io(format!("read {}", file.display()))(e)),
    };
    let mut ranges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.trim().split(':').collect();
        if fields.first() != Some(&SUBORDINATE_USER) {
            continue;
        }
        let parsed = match fields[..] {
            [_, start, count] => start.parse().ok().zip(count.parse().ok()),
            _ => None,
        };
        let Some((start, count)) = parsed else {
            return Err(Error::invalid(
                "subordinate id line",
                format!("{}:{}: {line}", file.display(), n + 1),
                "expected NAME:START:COUNT",
            ));
        };
        let range = IdRange { start, count };
        if start == 0 || range.end() > u32::MAX as u64 {
            return Err(Error::invalid(
                "subordinate id line",
                format!("{}:{}: {line}", file.display(), n + 1),
                "a range must not include id 0 (the host's root) or reach past 4294967294",
            ));
        }
        ranges.push(range);
    }
    Ok(if ranges.is_empty() {
        vec![DEFAULT_POOL]
    } else {
        ranges
    })
}

/// Blocks of [`BLOCK`] ids, at the same index in the uid and gid pools so
/// that a container's uids and gids line up, that no map in `used` touches.
pub fn candidates(uids: &[IdRange], gids: &[IdRange], used: &[IdMap]) -> Vec<IdMap> {
    let blocks = |pool: &[IdRange]| -> Vec<IdRange> {
        pool.iter()
            .flat_map(|r| {
                (0..r.count / BLOCK).map(move |i| IdRange {
                    // read_pool keeps every range below u32::MAX.
                    start: r.start + i * BLOCK,
                    count: BLOCK,
                })
            })
            .collect()
    };
    blocks(uids)
        .into_iter()
        .zip(blocks(gids))
        .filter(|(u, g)| {
            used.iter()
                .all(|m| !m.uids().overlaps(*u) && !m.gids().overlaps(*g))
        })
        .map(|(u, g)| IdMap {
            uid: u.start,
            gid: g.start,
            count: BLOCK,
        })
        .collect()
}

/// Claims the first of `candidates` that overlaps no block another
/// container on this host holds, for the container whose state directory is
/// `dir` (which must exist: a claim whose directory is gone is stale and is
/// taken over). Overlap, not equality: state roots may use other pools.
pub fn claim(candidates: &[IdMap], dir: &Path) -> Result<Option<IdMap>> {
    let claims = Path::new(CLAIMS);
    std::fs::create_dir_all(claims).map_err(Error::io(format!("create {CLAIMS}")))?;
    let _lock = crate::files::lock_file(&claims.join(".lock"))?;
    let held = live_claims(claims)?;
    let Some(map) = candidates.iter().find(|m| {
        held.iter()
            .all(|h| !h.uids().overlaps(m.uids()) && !h.gids().overlaps(m.gids()))
    }) else {
        return Ok(None);
    };
    let path = claims.join(map.uid.to_string());
    let mut text = dir.as_os_str().as_encoded_bytes().to_vec();
    text.extend(format!("\n{} {} {}\n", map.uid, map.gid, map.count).bytes());
    std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))?;
    Ok(Some(*map))
}

/// Makes sure the container in `dir` (canonical) holds the claim on its
/// block `map` again, as it starts again: claims live under `/run` and do
/// not survive a reboot, records do. Refused if another container's claim
/// overlaps the block meanwhile.
pub fn reclaim(map: IdMap, dir: &Path) -> Result<()> {
    let own = Path::new(CLAIMS).join(map.uid.to_string());
    let held = std::fs::read(&own).ok().and_then(|text| parse_claim(&text));
    if held.is_some_and(|(holder, held)| holder == dir && held == map) {
        return Ok(());
    }
    match claim(&[map], dir)? {
        Some(_) => Ok(()),
        None => Err(Error::conflict(
            "container",
            dir.display().to_string(),
            format!(
                "its user-namespace ids (host uids {} to {}) were claimed by another container since it last ran: remove one of them",
                map.uid,
                map.uid + map.count - 1
            ),
        )),
    }
}

/// The blocks held by claims whose containers still exist; stale claims
/// are removed on the way. A claim that cannot be read or understood counts
/// as holding the block its name starts, in uids and gids both.
fn live_claims(claims: &Path) -> Result<Vec<IdMap>> {
    let entries = std::fs::read_dir(claims).map_err(Error::io(format!("read {CLAIMS}")))?;
    let mut held = Vec::new();
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        let Some(first) = path
            .file_name()
            .and_then(|n| n.to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => Vec::new(),
        };
        match parse_claim(&text) {
            Some((holder, _)) if !holder.exists() => {
                let _ = std::fs::remove_file(&path);
            }
            Some((_, map)) => held.push(map),
            None => held.push(IdMap {
                uid: first,
                gid: first,
                count: BLOCK,
            }),
        }
    }
    Ok(held)
}

/// A claim's holder (a state directory) and its block.
fn parse_claim(text: &[u8]) -> Option<(std::path::PathBuf, IdMap)> {
    use std::os::unix::ffi::OsStrExt;
    let text = text.strip_suffix(b"\n")?;
    let split = text.iter().rposition(|&b| b == b'\n')?;
    let (holder, ids) = (
        &text[..split],
        std::str::from_utf8(&text[split + 1..]).ok()?,
    );
    let mut numbers = ids.split(' ').map(|n| n.parse::<u32>().ok());
    let map = IdMap {
        uid: numbers.next()??,
        gid: numbers.next()??,
        count: numbers.next()??,
    };
    Some((std::ffi::OsStr::from_bytes(holder).into(), map))
}

/// Gives up the claim that the container in `dir` holds on `map`, if any.
pub fn release(map: IdMap, dir: &Path) {
    let claims = Path::new(CLAIMS);
    let Ok(_lock) = crate::files::lock_file(&claims.join(".lock")) else {
        return;
    };
    let path = claims.join(map.uid.to_string());
    if let Some((holder, _)) = std::fs::read(&path).ok().and_then(|t| parse_claim(&t)) {
        if holder == dir {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Releases whatever claim the container directory `dir` holds, whatever
/// its ids: for a container whose record, and so its map, is lost.
pub fn release_held_by(dir: &Path) {
    let claims = Path::new(CLAIMS);
    let Ok(_lock) = crate::files::lock_file(&claims.join(".lock")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(claims) else {
        return;
    };
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        if let Some((holder, _)) = std::fs::read(&path).ok().and_then(|t| parse_claim(&t)) {
            if holder == dir {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
fn allocate(uids: &[IdRange], gids: &[IdRange], used: &[IdMap]) -> Option<IdMap> {
    candidates(uids, gids, used).first().copied()
}

/// The error for a pool with no free block; `in_use` of them are held by
/// containers of the state root at hand.
pub fn exhausted(in_use: usize) -> Error {
    let (subuid, subgid) = id_files();
    Error::invalid(
        "--userns",
        "auto",
        format!(
            "no free block of {BLOCK} ids in {} and {} for user {SUBORDINATE_USER} ({in_use} held by containers here, the rest claimed in {CLAIMS}): remove a container, or add a range",
            subuid.display(),
            subgid.display()
        ),
    )
}

/// Writes `map` as `pid`'s uid and gid maps. `pid` must still be waiting
/// for its release: until the maps exist it has no valid ids.
///
/// Without root the kernel accepts a gid map only once `setgroups` is
/// denied in the namespace, so that a dropped group cannot be regained.
pub fn write_maps(pid: i32, map: IdMap, rootless: bool) -> Result<()> {
    if rootless {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").map_err(Error::io(format!("write {path}")))?;
    }
    for (file, start) in [("uid_map", map.uid), ("gid_map", map.gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, format!("0 {start} {}\n", map.count))
            .map_err(Error::io(format!("write {path}")))?;
    }
    Ok(())
}

/// Writes an OCI configuration's maps for init (`pid`), each line as given.
pub fn write_mappings(pid: i32, uids: &[Mapping], gids: &[Mapping]) -> Result<()> {
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{pid}/{file}");
        let lines: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
            .collect();
        // One write: the kernel takes a map whole, once.
        std::fs::write(&path, lines).map_err(Error::io(format!("write {path}")))?;
    }
    Ok(())
}

/// Checks that the container's root (host uid `uid`) can reach each of
/// `paths`: overlayfs opens the layers with the mounter's rights, and inside
/// its namespace that root is an ordinary user to every directory above.
pub fn check_reachable(paths: &[&Path], uid: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for path in paths {
        for dir in path.ancestors() {
            let Ok(meta) = std::fs::metadata(dir) else {
                continue;
            };
            if meta.uid() != uid && meta.mode() & 0o001 == 0 {
                return Err(Error::invalid(
                    "--userns",
                    "auto",
                    format!(
                        "the container's root (host uid {uid}) cannot search {} (mode {:o}), which it needs to reach {}; allow others to search it (chmod o+x)",
                        dir.display(),
                        meta.mode() & 0o7777,
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Shifts the owners of `path` and everything below it into the
/// container's ids (uid N becomes the host's `map.uid + N`), as the files
/// of a new volume filled from the image: inside, each keeps the owner it
/// had in the image. An id beyond the block becomes the container's root.
/// Only for a tree no container can reach yet: it walks by path.
pub fn shift_into(path: &Path, map: IdMap) -> Result<()> {
    shift_tree(path, map, &mut std::collections::HashSet::new())
}

/// [`shift_into`], with the inodes of hard-linked files seen so far: each
/// is shifted once, however many names it has.
fn shift_tree(
    path: &Path,
    map: IdMap,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(path).map_err(Error::io(format!("read {}", path.display())))?;
    if !meta.is_dir() && meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
        return Ok(());
    }
    let shift = |id: u32, base: u32| if id < map.count { base + id } else { base };
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(nix::unistd::Uid::from_raw(shift(meta.uid(), map.uid))),
        Some(nix::unistd::Gid::from_raw(shift(meta.gid(), map.gid))),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(Error::sys(format!("chown {}", path.display())))?;
    // chown clears setuid and setgid bits; they are the image's, put back.
    if !meta.file_type().is_symlink() && meta.mode() & 0o6000 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(Error::io(format!("chmod {}", path.display())))?;
    }
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).map_err(Error::io(format!("read {}", path.display())))?
        {
            let entry = entry.map_err(Error::io(format!("read {}", path.display())))?;
            shift_tree(&entry.path(), map, seen)?;
        }
    }
    Ok(())
}

/// Gives `paths` and everything below them to the container's root, so
/// that inside they are its own rather than nobody's.
pub fn give_to_root(paths: &[&Path], map: IdMap) -> Result<()> {
    let owner = (
        Some(nix::unistd::Uid::from_raw(map.uid)),
        Some(nix::unistd::Gid::from_raw(map.gid)),
    );
    fn walk(
        path: &Path,
        owner: (Option<nix::unistd::Uid>, Option<nix::unistd::Gid>),
    ) -> Result<()> {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            owner.0,
            owner.1,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(Error::sys(format!("chown {}", path.display())))?;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            for entry in
                std::fs::read_dir(path).map_err(Error::io(format!("read {}", path.display())))?
            {
                let entry = entry.map_err(Error::io(format!("read {}", path.display())))?;
                walk(&entry.path(), owner)?;
            }
        }
        Ok(())
    }
    paths.iter().try_for_each(|p| walk(p, owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u32, count: u32) -> IdRange {
        IdRange { start, count }
    }

    #[test]
    fn the_pool_is_read_for_our_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("subuid");
        std::fs::write(&file, "alice:100000:65536\nmydocker:200000:131072\n").unwrap();
        assert_eq!(read_pool(&file).unwrap(), [range(200000, 131072)]);
        std::fs::write(&file, "alice:100000:65536\n").unwrap();
        assert_eq!(read_pool(&file).unwrap(), [DEFAULT_POOL]);
        assert_eq!(read_pool(&dir.path().join("none")).unwrap(), [DEFAULT_POOL]);
        std::fs::write(&file, "mydocker:lots\n").unwrap();
        let message = read_pool(&file).unwrap_err().to_string();
        assert!(message.contains("mydocker:lots"), "{message}");
        for unsafe_range in ["mydocker:0:65536\n", "mydocker:4294901760:131072\n"] {
            std::fs::write(&file, unsafe_range).unwrap();
            let message = read_pool(&file).unwrap_err().to_string();
            assert!(message.contains("must not include id 0"), "{message}");
        }
    }

    #[test]
    fn a_claim_reads_back_its_holder_and_block() {
        let map = IdMap {
            uid: 1_000_065_536,
            gid: 7,
            count: BLOCK,
        };
        let text = format!(
            "/var/lib/my docker/containers/ab\n{} {} {}\n",
            map.uid, map.gid, map.count
        );
        let (holder, read) = parse_claim(text.as_bytes()).unwrap();
        assert_eq!(holder, Path::new("/var/lib/my docker/containers/ab"));
        assert_eq!(read, map);
        assert_eq!(parse_claim(b"/only/a/holder"), None);
    }

    #[test]
    fn blocks_are_handed_out_once_and_ranges_too_small_give_none() {
        let pool = [range(200000, 2 * BLOCK)];
        let first = allocate(&pool, &pool, &[]).unwrap();
        assert_eq!(first.uid, 200000);
        let second = allocate(&pool, &pool, &[first]).unwrap();
        assert_eq!(second.uid, 200000 + BLOCK);
        assert_eq!(allocate(&pool, &pool, &[first, second]), None);
        assert_eq!(allocate(&[range(0, BLOCK - 1)], &pool, &[]), None);
    }
}
