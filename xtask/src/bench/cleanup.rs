//! Leaving nothing behind: the cgroups the bench caused, OCI containers, private state directories.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Every cgroup directory named after the bench (mydocker's parent, runc's
/// `/<id>`), in each hierarchy, the unified one included.
pub fn bench_cgroups() -> Vec<PathBuf> {
    let parent = super::CGROUP_PARENT;
    let ours = |name: &str| {
        name == parent
            || super::peers::OCI
                .iter()
                .any(|oci| name.starts_with(&format!("{parent}-{}-", oci.name)))
    };
    let entries = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
    };
    entries(Path::new(runtime::cgroup::CGROUP_ROOT))
        .flat_map(|hierarchy| entries(&hierarchy).collect::<Vec<_>>())
        .filter(|path| {
            path.is_dir() && path.file_name().is_some_and(|n| ours(&n.to_string_lossy()))
        })
        .collect()
}

/// Deletes containers the OCI runtimes left in their state directories in
/// `scratch`, removes the bench's cgroups that did not exist before it
/// (`existed`: those stay, they are not ours), then `scratch`. Whatever could
/// not be removed is named in the error.
pub fn finish(existed: &[PathBuf], scratch: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for oci in &super::peers::OCI {
        let (state, bin) = (scratch.join(oci.name), oci.binary());
        let bin = bin.display();
        if !state.exists() {
            continue;
        }
        let listed = Command::new(oci.binary())
            .arg("--root")
            .arg(&state)
            .args(["list", "-q"])
            .output();
        let ids = match listed {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            Ok(out) => {
                problems.push(format!("`{bin} list` failed ({})", out.status));
                continue;
            }
            Err(e) => {
                problems.push(format!("cannot run `{bin} list`: {e}"));
                continue;
            }
        };
        // runc and crun print ids alone; youki ignores -q and prints its
        // table, whose first column is the id.
        let ids: Vec<&str> = ids
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|id| *id != "ID")
            .collect();
        // A peer's leftover is the peer's to answer for: said, deleted, and
        // an error only if it will not go.
        for id in ids {
            let deleted = Command::new(oci.binary())
                .arg("--root")
                .arg(&state)
                .args(["delete", "--force", id])
                .output()
                .is_ok_and(|out| out.status.success());
            match deleted {
                true => eprintln!("xtask: {bin} left container {id} behind (deleted now)"),
                false => problems.push(format!(
                    "{bin} left container {id} behind, and `delete --force` failed"
                )),
            }
        }
    }
    for dir in bench_cgroups() {
        if !existed.contains(&dir) {
            if let Err(e) = remove_cgroup(&dir) {
                problems.push(format!("cannot remove cgroup {}: {e}", dir.display()));
            }
        }
    }
    if let Err(e) = std::fs::remove_dir_all(scratch) {
        if e.kind() != ErrorKind::NotFound {
            problems.push(format!("cannot remove {}: {e}", scratch.display()));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!("cleanup: {}", problems.join("; "))),
    }
}

/// `rmdir` only (an empty cgroup is removed this way), retried while EBUSY:
/// a just-reaped task can stay charged to the cgroup for a moment.
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
