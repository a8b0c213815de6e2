//! What a spec is checked against on this machine: its online CPUs and
//! memory nodes, read from sysfs, and the rootfs directory.

use std::path::Path;

use crate::error::{Error, Result};
use crate::parse::IdSet;
use crate::spec::HostFacts;

/// Reads the online CPUs and memory nodes from sysfs.
pub fn facts() -> Result<HostFacts> {
    let online_cpus = read_id_list("/sys/devices/system/cpu/online")?;
    // Kernels without NUMA have no node directory; they have exactly node 0.
    let online_mems = match std::fs::read_to_string("/sys/devices/system/node/online") {
        Ok(text) => IdSet::parse("node list", text.trim())?,
        Err(_) => IdSet([0].into()),
    };
    Ok(HostFacts {
        cpu_count: online_cpus.0.len() as u32,
        online_cpus,
        online_mems,
    })
}

fn read_id_list(path: &str) -> Result<IdSet> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!("reading {path}")))?;
    Ok(IdSet::parse("cpu list", text.trim())?)
}

pub fn check_rootfs(path: &Path) -> Result<()> {
    let problem = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "is not a directory: expected a directory holding a root filesystem".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "does not exist: expected a directory holding a root filesystem (`cargo xtask rootfs` builds one)".to_owned()
        }
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(Error::Rootfs {
        path: path.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_must_be_a_directory_that_exists() {
        check_rootfs(Path::new("/")).unwrap();
        let missing = check_rootfs(Path::new("/nonexistent/rootfs")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("\"/nonexistent/rootfs\" does not exist"),
            "{missing}"
        );
        let file = check_rootfs(Path::new("/etc/hostname")).unwrap_err();
        assert!(file.to_string().contains("is not a directory"), "{file}");
    }

    #[test]
    fn this_machine_has_an_online_cpu_and_node_0() {
        let facts = facts().unwrap();
        assert!(facts.cpu_count >= 1 && facts.online_mems.0.contains(&0));
    }
}
