//! An OCI bundle's `config.json` as a [`Spec`].
//!
//! The OCI runtime specification describes a container as one JSON file in a
//! directory (the bundle) beside its root filesystem. Clients such as podman
//! and containerd write it, and a runtime must either do what it says or
//! refuse it: a field quietly skipped would start a container that is not the
//! one asked for. So every field present in the file is checked against
//! [`SUPPORTED`], the fields mydocker honours, and anything else is refused by
//! its JSON path. The typed reading goes through the `oci-spec` crate, whose
//! errors are given the path of the field they concern.

use std::path::{Path, PathBuf};

mod linux;
mod process;

use oci_spec::runtime::Spec as Config;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::mount::Mount;
use crate::{OciParts, Spec};

/// The fields mydocker honours, as JSON paths (array elements take their
/// array's path). A path listed here is read below; one absent is refused.
pub const SUPPORTED: &[&str] = &[
    "ociVersion",
    "annotations",
    "root",
    "root.path",
    "root.readonly",
    "hostname",
    "hooks",
    "hooks.createRuntime",
    "hooks.createRuntime.path",
    "hooks.createRuntime.args",
    "hooks.createRuntime.env",
    "hooks.createRuntime.timeout",
    "hooks.prestart",
    "hooks.prestart.path",
    "hooks.prestart.args",
    "hooks.prestart.env",
    "hooks.prestart.timeout",
    "hooks.poststart",
    "hooks.poststart.path",
    "hooks.poststart.args",
    "hooks.poststart.env",
    "hooks.poststart.timeout",
    "hooks.poststop",
    "hooks.poststop.path",
    "hooks.poststop.args",
    "hooks.poststop.env",
    "hooks.poststop.timeout",
    "mounts",
    "mounts.destination",
    "mounts.type",
    "mounts.source",
    "mounts.options",
    "process",
    "process.args",
    "process.env",
    "process.cwd",
    "process.terminal",
    "process.consoleSize",
    "process.consoleSize.height",
    "process.consoleSize.width",
    "process.user",
    "process.user.uid",
    "process.user.gid",
    "process.user.umask",
    "process.user.additionalGids",
    "process.noNewPrivileges",
    "process.oomScoreAdj",
    "process.rlimits",
    "process.rlimits.type",
    "process.rlimits.soft",
    "process.rlimits.hard",
    "process.capabilities",
    "process.capabilities.bounding",
    "process.capabilities.effective",
    "process.capabilities.permitted",
    "process.capabilities.inheritable",
    "process.capabilities.ambient",
    "linux",
    "linux.namespaces",
    "linux.namespaces.type",
    "linux.namespaces.path",
    "linux.cgroupsPath",
    "linux.uidMappings",
    "linux.uidMappings.containerID",
    "linux.uidMappings.hostID",
    "linux.uidMappings.size",
    "linux.gidMappings",
    "linux.gidMappings.containerID",
    "linux.gidMappings.hostID",
    "linux.gidMappings.size",
    "linux.rootfsPropagation",
    "linux.maskedPaths",
    "linux.readonlyPaths",
    "linux.sysctl",
    "linux.seccomp",
    "linux.devices",
    "linux.devices.path",
    "linux.devices.type",
    "linux.devices.major",
    "linux.devices.minor",
    "linux.devices.fileMode",
    "linux.devices.uid",
    "linux.devices.gid",
    "linux.resources",
    "linux.resources.devices",
    "linux.resources.devices.allow",
    "linux.resources.devices.type",
    "linux.resources.devices.major",
    "linux.resources.devices.minor",
    "linux.resources.devices.access",
    "linux.resources.memory",
    "linux.resources.memory.limit",
    "linux.resources.memory.swap",
    "linux.resources.cpu",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.cpu.cpus",
    "linux.resources.cpu.mems",
    "linux.resources.pids",
    "linux.resources.pids.limit",
];

/// Fields whose values are free-form (annotations, sysctl names) or
/// checked as a whole elsewhere (the seccomp profile, by its compiler).
const OPAQUE: &[&str] = &["annotations", "linux.sysctl", "linux.seccomp"];

/// Reads `text`, the `config.json` of the bundle at `bundle`, into a spec.
/// The root path is resolved against the bundle, as the specification says.
pub fn from_config(text: &str, bundle: &Path) -> Result<Spec> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Config {
        field: String::new(),
        problem: format!("not JSON: {e}"),
    })?;
    let config: Config = serde_path_to_error::deserialize(&value).map_err(|e| Error::Config {
        field: e.path().to_string(),
        problem: e.inner().to_string(),
    })?;
    // The specification's fields, as read back: a property it does not
    // define is dropped on the way, and must be, since the specification
    // says a runtime ignores unknown properties. Of its own fields, each
    // one mydocker does not do is refused.
    let known = serde_json::to_value(&config).map_err(|e| Error::Config {
        field: String::new(),
        problem: format!("cannot be read back: {e}"),
    })?;
    if let Some(field) = first_unsupported(&known, "") {
        return Err(Error::Unsupported {
            field,
            why: "mydocker does not support this field yet".into(),
        });
    }
    translate(&config, bundle)
}

/// The configuration `mydocker spec` writes: a shell in a busybox-like
/// root at `rootfs`, with docker's default capabilities, no_new_privs, new
/// namespaces of every kind mydocker makes, the kernel filesystems a
/// container expects, docker's masked and read-only paths, and no device
/// but the defaults. Only supported fields, so that `create` takes it as
/// it is.
pub fn default_config() -> Value {
    use serde_json::json;
    // The caps crate names them as the kernel does: CAP_CHOWN.
    let capabilities = crate::security::names(crate::security::DEFAULT);
    let namespaces: Vec<Value> = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|t| json!({ "type": t }))
        .collect();
    let mount = |destination: &str, typ: &str, source: &str, options: &[&str]| json!({"destination": destination, "type": typ, "source": source, "options": options});
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "mydocker",
        "mounts": [
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ],
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [format!("PATH={}", crate::DEFAULT_PATH), "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "linux": {
            "namespaces": namespaces,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": crate::security::MASKED,
            "readonlyPaths": crate::security::READ_ONLY,
        },
    })
}

/// The first field of `value` (below `path`) that [`SUPPORTED`] lacks.
/// Nulls count as absent, as the specification's omitempty fields do.
pub fn first_unsupported(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(fields) => fields.iter().find_map(|(key, inner)| {
            if inner.is_null() {
                return None;
            }
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if !SUPPORTED.contains(&field.as_str()) {
                return Some(field);
            }
            if OPAQUE.contains(&field.as_str()) {
                return None;
            }
            first_unsupported(inner, &field)
        }),
        Value::Array(items) => items.iter().find_map(|item| first_unsupported(item, path)),
        _ => None,
    }
}

fn translate(config: &Config, bundle: &Path) -> Result<Spec> {
    let version = config.version();
    if !version.starts_with("1.") {
        return Err(Error::Config {
            field: "ociVersion".into(),
            problem: format!("{version:?} is not a 1.x version of the runtime specification"),
        });
    }
    let root = config.root().as_ref().ok_or_else(|| Error::Config {
        field: "root".into(),
        problem: "missing: a container needs a root filesystem".into(),
    })?;
    let process = config.process().as_ref().ok_or_else(|| Error::Config {
        field: "process".into(),
        problem: "missing: create needs the process to run".into(),
    })?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::Config {
            field: "process.args".into(),
            problem: "empty: name the command to run".into(),
        });
    }
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(Error::Config {
            field: "process.cwd".into(),
            problem: format!("{} is not an absolute path", cwd.display()),
        });
    }
    let mut spec = Spec::new(resolve(bundle, root.path()), args);
    spec.overlay = false;
    spec.wait_for_start = true;
    spec.auto_remove = false;
    // Standard streams reach the container untouched.
    spec.interactive = true;
    spec.bundle = Some(crate::Bundle {
        dir: bundle.to_owned(),
        annotations: config
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        // Known once the namespaces are read, below.
        in_callers_mount_table: false,
    });
    spec.env = process::environment(process.env().as_deref().unwrap_or_default())?;
    spec.workdir = Some(cwd.to_string_lossy().into_owned());
    spec.hostname = config.hostname().clone();
    spec.tty = process.terminal().unwrap_or(false);
    spec.security.read_only_rootfs = root.readonly().unwrap_or(false);
    spec.security.no_new_privileges = process.no_new_privileges().unwrap_or(false);
    // The configuration lists what to mask and filter; docker's own lists
    // and filter are not added to it.
    spec.security.mask_paths = false;
    spec.security.seccomp = false;
    spec.rlimits = process::rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    let mut parts = OciParts {
        user: process::user(process.user()),
        oom_score_adj: process.oom_score_adj(),
        capabilities: process::capabilities(process.capabilities().as_ref())?,
        mounts: mounts(config.mounts().as_deref().unwrap_or_default())?,
        ..OciParts::default()
    };
    spec.security.capabilities = parts.capabilities.bounding;
    match config.linux() {
        Some(config) => {
            let (namespaces, user, joined) =
                linux::namespaces(config.namespaces().as_deref().unwrap_or_default())?;
            spec.namespaces = namespaces;
            parts.join_namespaces = joined;
            if user {
                (parts.uid_mappings, parts.gid_mappings) = linux::id_mappings(config)?;
            }
            linux::read(config, &mut spec.limits, &mut parts)?;
            linux::check_sysctl_namespaces(
                &parts.sysctl,
                &spec.namespaces,
                &parts.join_namespaces,
            )?;
        }
        None => spec.namespaces = linux::namespaces(&[])?.0,
    }
    // Without a mount namespace the container's mounts are in the caller's
    // table: nothing may change the host's root or send mounts to it.
    let own_mount = spec.namespaces.mount || parts.join_namespaces.iter().any(|(k, _)| k == "mnt");
    if parts.root_propagation.is_some() && !own_mount {
        return Err(Error::Config {
            field: "linux.rootfsPropagation".into(),
            problem: "set without a mount namespace, it would change the host's root mount".into(),
        });
    }
    if let Some(i) = parts
        .mounts
        .iter()
        .position(|m| m.propagation & libc::MS_SHARED != 0)
    {
        if !own_mount {
            return Err(Error::Config {
                field: format!("mounts[{i}].options"),
                problem: "shared or rshared without a mount namespace would propagate the container's mounts to the host; use slave or private".into(),
            });
        }
    }
    let own_uts = spec.namespaces.uts || parts.join_namespaces.iter().any(|(k, _)| k == "uts");
    if spec.hostname.is_some() && !own_uts {
        return Err(Error::Config {
            field: "hostname".into(),
            problem: "set without a uts namespace, it would rename the host".into(),
        });
    }
    // podman pauses and resumes OCI containers.
    spec.limits.pausable = true;
    if let Some(bundle) = spec.bundle.as_mut() {
        bundle.in_callers_mount_table = !own_mount;
    }
    spec.oci = Some(Box::new(parts));
    Ok(spec)
}

/// `mounts`, each checked and its options split.
fn mounts(entries: &[oci_spec::runtime::Mount]) -> Result<Vec<Mount>> {
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            Mount::parse(
                &format!("mounts[{i}]"),
                &entry.destination().to_string_lossy(),
                entry.typ().as_deref(),
                entry
                    .source()
                    .as_deref()
                    .map(|s| s.to_string_lossy())
                    .as_deref(),
                entry.options().as_deref().unwrap_or_default(),
            )
        })
        .collect()
}

/// `root.path` is relative to the bundle unless absolute.
fn resolve(bundle: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        bundle.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rlimit::{Resource, Rlimit};
    use crate::SwapLimit;

    fn config(process: &str, linux: &str) -> String {
        format!(
            r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "hostname": "box",
                "process": {process}, "linux": {linux}, "annotations": {{"any": "thing"}}}}"#
        )
    }

    const PROCESS: &str = r#"{"args": ["sh", "-c", "true"], "cwd": "/work",
        "env": ["PATH=/bin", "A=b=c"], "user": {"uid": 0, "gid": 0},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL", "CAP_CHOWN"],
                         "permitted": ["CAP_CHOWN", "CAP_KILL"], "inheritable": ["CAP_KILL"]}}"#;
    const LINUX: &str = r#"{"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts"}],
        "resources": {"memory": {"limit": 67108864, "swap": -1},
                      "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
                      "pids": {"limit": 64}}}"#;

    #[test]
    fn a_supported_config_becomes_the_same_spec_the_cli_would_build() {
        let spec = from_config(&config(PROCESS, LINUX), Path::new("/b")).unwrap();
        assert_eq!(spec.rootfs, Path::new("/b/rootfs"));
        assert_eq!(spec.args, ["sh", "-c", "true"]);
        assert_eq!(spec.workdir.as_deref(), Some("/work"));
        assert_eq!(spec.env[1], ("A".into(), "b=c".into()));
        assert_eq!(spec.hostname.as_deref(), Some("box"));
        let ns = spec.namespaces;
        assert!(ns.mount && ns.pid && ns.uts && !ns.net && !ns.ipc && !ns.cgroup);
        assert_eq!(spec.limits.memory, Some(64 << 20));
        assert_eq!(spec.limits.memory_swap, Some(SwapLimit::Unlimited));
        assert_eq!(spec.limits.cpu_quota, Some(50_000));
        assert_eq!(spec.limits.cpu_period, Some(100_000));
        assert_eq!(spec.limits.pids, Some(64));
        let (chown, kill) = (
            ::caps::Capability::CAP_CHOWN.bitmask(),
            ::caps::Capability::CAP_KILL.bitmask(),
        );
        let parts = spec.oci.as_deref().unwrap();
        assert_eq!(parts.capabilities.bounding, chown | kill);
        assert_eq!(parts.capabilities.effective, kill | chown);
        assert_eq!(parts.capabilities.inheritable, kill);
        assert_eq!(parts.capabilities.ambient, 0, "a set not named is empty");
        assert!(!spec.tty && !spec.security.read_only_rootfs);
        assert_eq!(
            spec.rlimits,
            [Rlimit::new(Resource::Nofile, 1024, 4096).unwrap()]
        );
    }

    #[test]
    fn a_container_may_keep_the_hosts_mount_and_pid_namespaces_but_not_change_them() {
        let own_uts = r#"{"namespaces": [{"type": "uts"}]}"#;
        let spec = from_config(&config(PROCESS, own_uts), Path::new("/b")).unwrap();
        assert!(!spec.namespaces.mount && !spec.namespaces.pid);
        assert!(spec.bundle.as_ref().unwrap().in_callers_mount_table);
        let own = from_config(&config(PROCESS, LINUX), Path::new("/b")).unwrap();
        assert!(!own.bundle.unwrap().in_callers_mount_table);
        let text = config(
            PROCESS,
            r#"{"namespaces": [{"type": "uts"}], "rootfsPropagation": "shared"}"#,
        );
        let e = from_config(&text, Path::new("/b")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config.json: linux.rootfsPropagation: "),
            "{e}"
        );
        let shared_mount = |ns: &str| {
            config(PROCESS, &format!(r#"{{"namespaces": [{{"type": "uts"}}{ns}]}}"#)).replace(
                r#""linux""#,
                r#""mounts": [{"destination": "/a", "type": "tmpfs", "source": "t"},
                              {"destination": "/b", "type": "bind", "source": "/b", "options": ["rbind", "rshared"]}],
                   "linux""#,
            )
        };
        let e = from_config(&shared_mount(""), Path::new("/b")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config.json: mounts[1].options: "),
            "{e}"
        );
        from_config(&shared_mount(r#", {"type": "mount"}"#), Path::new("/b")).unwrap();
    }

    #[test]
    fn a_capability_the_kernel_has_no_number_for_is_refused_by_name() {
        let text = config(
            &PROCESS.replace(
                r#""bounding": ["CAP_CHOWN", "CAP_KILL"]"#,
                r#""bounding": ["CAP_CHOWN", "CAP_TEST"]"#,
            ),
            LINUX,
        );
        let e = from_config(&text, Path::new("/b")).unwrap_err().to_string();
        assert!(
            e.contains("process.capabilities.bounding") && e.contains("CAP_TEST"),
            "{e}"
        );
    }

    #[test]
    fn an_unsupported_field_is_refused_by_its_path() {
        for (text, field) in [
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount"}], "intelRdt": {"closID": "b"}}"#,
                ),
                "linux.intelRdt",
            ),
            (
                config(
                    &PROCESS.replace("\"cwd\"", "\"apparmorProfile\": \"x\", \"cwd\""),
                    "{}",
                ),
                "process.apparmorProfile",
            ),
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}]}"#,
                ),
                "linux.namespaces.path",
            ),
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount"}], "resources": {"memory": {"kernel": 1}}}"#,
                ),
                "linux.resources.memory.kernel",
            ),
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount"}, {"type": "time"}]}"#,
                ),
                "linux.namespaces.type",
            ),
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "pid"}, {"type": "user"}]}"#,
                ),
                "linux.namespaces",
            ),
        ] {
            let e = from_config(&text, Path::new("/b")).unwrap_err();
            assert!(
                matches!(&e, Error::Unsupported { field: f, .. } if f == field),
                "{field}: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("config.json: {field}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_malformed_config_names_the_field_and_what_is_wrong() {
        let bad_uid = config(&PROCESS.replace("\"uid\": 0", "\"uid\": \"root\""), "{}");
        let e = from_config(&bad_uid, Path::new("/b")).unwrap_err();
        assert!(
            e.to_string().starts_with("config.json: process.user.uid: "),
            "{e}"
        );
        let e = from_config("{", Path::new("/b")).unwrap_err();
        assert!(e.to_string().starts_with("config.json: not JSON"), "{e}");
        let no_args = config(&PROCESS.replace(r#"["sh", "-c", "true"]"#, "[]"), LINUX);
        let e = from_config(&no_args, Path::new("/b")).unwrap_err();
        assert!(e.to_string().contains("process.args"), "{e}");
        let bad_version = config(PROCESS, LINUX).replace("1.0.2", "2.0.0");
        assert!(from_config(&bad_version, Path::new("/b"))
            .unwrap_err()
            .to_string()
            .contains("ociVersion"));
    }

    #[test]
    fn linux_parts_are_read_and_what_would_reach_the_host_is_refused() {
        let linux = r#"{"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "network"}, {"type": "ipc"}],
            "cgroupsPath": "/libpod_parent/libpod-1", "rootfsPropagation": "rslave",
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "8192"},
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
            "resources": {"devices": [{"allow": false, "access": "rwm"},
                                      {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}}"#;
        let spec = from_config(&config(PROCESS, linux), Path::new("/b")).unwrap();
        let parts = spec.oci.as_deref().unwrap();
        assert_eq!(
            parts.cgroups_path.as_deref(),
            Some("libpod_parent/libpod-1")
        );
        assert_eq!(parts.root_propagation, Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(parts.masked_paths, ["/proc/kcore"]);
        assert_eq!(parts.readonly_paths, ["/proc/sys"]);
        assert!(parts
            .sysctl
            .contains(&("net/ipv4/ip_forward".into(), "1".into())));
        assert_eq!(parts.devices[0].path, "/dev/fuse");
        let lines: Vec<String> = spec.limits.devices.iter().map(|r| r.line()).collect();
        assert_eq!(lines[..2], ["a", "c 1:3 rw"]);
        assert!(
            lines.contains(&"c 136:* rwm".to_owned()),
            "ptys stay usable"
        );
        assert_eq!(
            lines.last().unwrap(),
            "c 10:229 rwm",
            "and the nodes it makes"
        );
        for (bad, field) in [
            (
                linux.replace("net.ipv4.ip_forward", "kernel.panic"),
                "linux.sysctl",
            ),
            (
                linux.replace(", {\"type\": \"network\"}", ""),
                "net.ipv4.ip_forward needs a network namespace",
            ),
            (
                linux.replace("/libpod_parent/libpod-1", "/a/../b"),
                "linux.cgroupsPath",
            ),
            (
                linux.replace("/libpod_parent/libpod-1", "system.slice:x:y"),
                "linux.cgroupsPath",
            ),
            (
                linux.replace("\"/proc/kcore\"", "\"proc\""),
                "linux.maskedPaths",
            ),
            (
                linux.replace(
                    "{\"type\": \"ipc\"}",
                    "{\"type\": \"ipc\"}, {\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
                ),
                "pid is listed twice",
            ),
            (
                linux.replace("rslave", "sideways"),
                "linux.rootfsPropagation",
            ),
            (
                linux.replace(
                    "\"minor\": 3, \"access\": \"rw\"",
                    "\"minor\": 3, \"access\": \"rx\"",
                ),
                "linux.resources.devices[1].access",
            ),
        ] {
            let e = from_config(&config(PROCESS, &bad), Path::new("/b")).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn capability_sets_the_kernel_would_refuse_are_named() {
        for (process, field) in [
            (
                PROCESS.replace(
                    r#""effective": ["CAP_KILL", "CAP_CHOWN"]"#,
                    r#""effective": ["CAP_SYS_ADMIN"]"#,
                ),
                "process.capabilities.effective",
            ),
            (
                PROCESS.replace(
                    r#""inheritable": ["CAP_KILL"]"#,
                    r#""inheritable": [], "ambient": ["CAP_KILL"]"#,
                ),
                "process.capabilities.ambient",
            ),
            (
                PROCESS.replace("CAP_KILL", "CAP_NONSENSE"),
                "process.capabilities.bounding",
            ),
        ] {
            let e = from_config(&config(&process, LINUX), Path::new("/b")).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn the_default_config_is_one_create_takes() {
        let text = default_config().to_string();
        let spec = from_config(&text, Path::new("/b")).unwrap();
        assert_eq!(spec.args, ["sh"]);
        assert_eq!(spec.security.capabilities, crate::security::DEFAULT);
        assert!(spec.security.no_new_privileges && spec.security.read_only_rootfs);
        let parts = spec.oci.as_deref().unwrap();
        assert_eq!(parts.mounts.len(), 7);
        assert_eq!(parts.masked_paths.len(), crate::security::MASKED.len());
        assert_eq!(spec.limits.devices[0].line(), "a");
        let ns = spec.namespaces;
        assert!(ns.pid && ns.net && ns.ipc && ns.uts && ns.mount && ns.cgroup);
    }

    #[test]
    fn a_property_the_specification_does_not_define_is_ignored() {
        let text = config(PROCESS, LINUX).replace(
            "\"hostname\": \"box\"",
            "\"hostname\": \"box\", \"futureProperty\": {\"x\": 1}",
        );
        assert!(text.contains("futureProperty"));
        assert!(from_config(&text, Path::new("/b")).is_ok());
    }

    #[test]
    fn every_supported_path_is_one_the_walk_accepts() {
        // A path in SUPPORTED whose parent is missing could never be reached.
        for path in SUPPORTED {
            if let Some((parent, _)) = path.rsplit_once('.') {
                assert!(SUPPORTED.contains(&parent), "{path} has no parent {parent}");
            }
        }
    }
}
