//! Setting up cgroups as a host's init would, in the mode the cell asks for.
//!
//! v1: a tmpfs at `/sys/fs/cgroup` and one hierarchy per controller, each
//! mounted on its own. A controller the kernel lists in `/proc/cgroups` can
//! still refuse a v1 mount (Debian's 6.12 lists memory but was built without
//! `CONFIG_MEMCG_V1`), so each is tried and a refusal is recorded.
//!
//! v2: cgroup2 alone (the kernel was booted with `cgroup_no_v1=all`), with
//! the controllers the runtime uses enabled in the root's
//! `cgroup.subtree_control`, as systemd does on a real host; the runtime
//! itself never writes to the root.

use nix::mount::{mount, MsFlags};
use vm_tests::CgroupMode;

const ROOT: &str = "/sys/fs/cgroup";
const V2_CONTROLLERS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];

/// Returns (controllers available, controllers missing with the error).
pub fn set_up(mode: CgroupMode) -> (Vec<String>, Vec<(String, String)>) {
    let (mut available, mut missing) = (Vec::new(), Vec::new());
    let _ = std::fs::create_dir_all(ROOT);
    match mode {
        CgroupMode::V2 => {
            if let Err(e) = mount(
                Some("cgroup2"),
                ROOT,
                Some("cgroup2"),
                MsFlags::empty(),
                None::<&str>,
            ) {
                missing.push(("cgroup2".into(), e.to_string()));
                return (available, missing);
            }
            let offered =
                std::fs::read_to_string(format!("{ROOT}/cgroup.controllers")).unwrap_or_default();
            for controller in V2_CONTROLLERS {
                if !offered.split_whitespace().any(|c| c == controller) {
                    missing.push((controller.into(), "not in cgroup.controllers".into()));
                    continue;
                }
                match std::fs::write(
                    format!("{ROOT}/cgroup.subtree_control"),
                    format!("+{controller}"),
                ) {
                    Ok(()) => available.push(controller.to_owned()),
                    Err(e) => missing.push((controller.into(), e.to_string())),
                }
            }
        }
        CgroupMode::V1 => {
            if let Err(e) = mount(
                Some("tmpfs"),
                ROOT,
                Some("tmpfs"),
                MsFlags::empty(),
                Some("mode=755"),
            ) {
                missing.push(("tmpfs".into(), e.to_string()));
                return (available, missing);
            }
            let listed = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
            for line in listed.lines().filter(|l| !l.starts_with('#')) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(name), Some(enabled)) = (fields.first(), fields.get(3)) else {
                    continue;
                };
                if *enabled != "1" {
                    missing.push((
                        name.to_string(),
                        "disabled on the kernel command line".into(),
                    ));
                    continue;
                }
                let dir = format!("{ROOT}/{name}");
                let _ = std::fs::create_dir(&dir);
                match mount(
                    Some("cgroup"),
                    dir.as_str(),
                    Some("cgroup"),
                    MsFlags::empty(),
                    Some(*name),
                ) {
                    Ok(()) => available.push(name.to_string()),
                    Err(e) => {
                        let _ = std::fs::remove_dir(&dir);
                        missing.push((name.to_string(), format!("v1 mount refused: {e}")));
                    }
                }
            }
        }
    }
    (available, missing)
}
