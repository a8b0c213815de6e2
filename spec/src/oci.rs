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

use oci_spec::runtime::{LinuxNamespaceType, Spec as Config};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::parse::{IdSet, NanoCpus};
use crate::rlimit::{Resource, Rlimit};
use crate::{Limits, Namespaces, Spec, SwapLimit};

/// The fields mydocker honours, as JSON paths (array elements take their
/// array's path). A path listed here is read below; one absent is refused.
pub const SUPPORTED: &[&str] = &[
    "ociVersion",
    "annotations",
    "root",
    "root.path",
    "root.readonly",
    "hostname",
    "process",
    "process.args",
    "process.env",
    "process.cwd",
    "process.terminal",
    "process.user",
    "process.user.uid",
    "process.user.gid",
    "process.noNewPrivileges",
    "process.rlimits",
    "process.rlimits.type",
    "process.rlimits.soft",
    "process.rlimits.hard",
    "process.capabilities",
    "process.capabilities.bounding",
    "process.capabilities.effective",
    "process.capabilities.permitted",
    "linux",
    "linux.namespaces",
    "linux.namespaces.type",
    "linux.resources",
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

/// Fields whose values are free-form and never looked into.
const OPAQUE: &[&str] = &["annotations"];

/// The CFS period a `--cpus` value implies; OCI may name another.
const CFS_PERIOD_US: u64 = 100_000;

/// Reads `text`, the `config.json` of the bundle at `bundle`, into a spec.
/// The root path is resolved against the bundle, as the specification says.
pub fn from_config(text: &str, bundle: &Path) -> Result<Spec> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Config {
        field: String::new(),
        problem: format!("not JSON: {e}"),
    })?;
    if let Some(field) = first_unsupported(&value, "") {
        return Err(Error::Unsupported {
            field,
            why: "mydocker does not support this field yet".into(),
        });
    }
    let config: Config = serde_path_to_error::deserialize(&value).map_err(|e| Error::Config {
        field: e.path().to_string(),
        problem: e.inner().to_string(),
    })?;
    translate(&config, bundle)
}

/// The configuration `mydocker spec` writes: a shell in a busybox-like
/// root at `rootfs`, with docker's default capabilities, no_new_privs, and
/// new namespaces of every kind mydocker makes. Only supported fields, so
/// that `create` takes it as it is.
pub fn default_config() -> Value {
    // The caps crate names them as the kernel does: CAP_CHOWN.
    let capabilities = crate::security::names(crate::security::DEFAULT);
    let namespaces: Vec<Value> = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        .iter()
        .map(|t| serde_json::json!({ "type": t }))
        .collect();
    serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "mydocker",
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
    let user = process.user();
    if user.uid() != 0 || user.gid() != 0 {
        return Err(Error::Unsupported {
            field: "process.user".into(),
            why: format!(
                "uid {} gid {}: mydocker runs the process as root (0:0) so far",
                user.uid(),
                user.gid()
            ),
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
    });
    spec.env = environment(process.env().as_deref().unwrap_or_default())?;
    spec.workdir = Some(cwd.to_string_lossy().into_owned());
    spec.hostname = config.hostname().clone();
    spec.tty = process.terminal().unwrap_or(false);
    spec.security.read_only_rootfs = root.readonly().unwrap_or(false);
    spec.security.no_new_privileges = process.no_new_privileges().unwrap_or(false);
    // OCI lists the paths to mask; until mydocker reads those lists, it
    // masks none rather than docker's own.
    spec.security.mask_paths = false;
    spec.security.seccomp = false;
    spec.security.capabilities = capabilities(process.capabilities().as_ref())?;
    spec.rlimits = rlimits(process.rlimits().as_deref().unwrap_or_default())?;
    if let Some(linux) = config.linux() {
        spec.namespaces = namespaces(linux.namespaces().as_deref().unwrap_or_default())?;
        if let Some(resources) = linux.resources() {
            spec.limits = limits(resources)?;
        }
    } else {
        spec.namespaces = namespaces(&[])?;
    }
    if spec.hostname.is_some() && !spec.namespaces.uts {
        return Err(Error::Config {
            field: "hostname".into(),
            problem: "set without a uts namespace, it would rename the host".into(),
        });
    }
    Ok(spec)
}

/// `root.path` is relative to the bundle unless absolute.
fn resolve(bundle: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        bundle.join(path)
    }
}

/// `KEY=VALUE` entries, each with its `=`.
fn environment(entries: &[String]) -> Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|entry| {
            crate::parse::parse_env(entry).map_err(|_| Error::Config {
                field: "process.env".into(),
                problem: format!("{entry:?} is not KEY=VALUE"),
            })
        })
        .collect()
}

/// `RLIMIT_*` entries, each resource once.
fn rlimits(entries: &[oci_spec::runtime::PosixRlimit]) -> Result<Vec<Rlimit>> {
    let limits = entries
        .iter()
        .map(|entry| {
            let name = serde_json::to_value(entry.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let resource = Resource::from_name(&name).ok_or_else(|| Error::Unsupported {
                field: "process.rlimits.type".into(),
                why: format!("{name} is not a resource mydocker knows"),
            })?;
            Rlimit::new(resource, entry.soft(), entry.hard()).map_err(|_| Error::Config {
                field: "process.rlimits".into(),
                problem: format!(
                    "{name}: soft {} exceeds hard {}",
                    entry.soft(),
                    entry.hard()
                ),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    crate::rlimit::check_unique(&limits, "process.rlimits")?;
    Ok(limits)
}

/// One mask for every set: mydocker gives the process the same bounding,
/// effective and permitted capabilities, and none inheritable or ambient.
fn capabilities(sets: Option<&oci_spec::runtime::LinuxCapabilities>) -> Result<u64> {
    let Some(sets) = sets else {
        return Ok(0);
    };
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<u64> {
        let mut mask = 0;
        for cap in set.iter().flatten() {
            let name = format!("CAP_{cap}");
            let parsed = crate::security::parse("process.capabilities", &name)?;
            mask |= parsed.map_or(0, |c| c.bitmask());
        }
        Ok(mask)
    };
    let bounding = mask(sets.bounding())?;
    for (field, set) in [
        ("process.capabilities.effective", sets.effective()),
        ("process.capabilities.permitted", sets.permitted()),
    ] {
        if set.is_some() && mask(set)? != bounding {
            return Err(Error::Unsupported {
                field: field.into(),
                why: "differs from the bounding set: mydocker gives every set the same capabilities so far".into(),
            });
        }
    }
    Ok(bounding)
}

/// The namespaces listed are new ones; those absent are the host's.
fn namespaces(listed: &[oci_spec::runtime::LinuxNamespace]) -> Result<Namespaces> {
    let mut namespaces = Namespaces {
        uts: false,
        pid: false,
        mount: false,
        ipc: false,
        net: false,
        cgroup: false,
    };
    for namespace in listed {
        if namespace.path().is_some() {
            return Err(Error::Unsupported {
                field: "linux.namespaces.path".into(),
                why: "joining an existing namespace is not supported yet".into(),
            });
        }
        let slot = match namespace.typ() {
            LinuxNamespaceType::Uts => &mut namespaces.uts,
            LinuxNamespaceType::Pid => &mut namespaces.pid,
            LinuxNamespaceType::Mount => &mut namespaces.mount,
            LinuxNamespaceType::Ipc => &mut namespaces.ipc,
            LinuxNamespaceType::Network => &mut namespaces.net,
            LinuxNamespaceType::Cgroup => &mut namespaces.cgroup,
            other => {
                return Err(Error::Unsupported {
                    field: "linux.namespaces.type".into(),
                    why: format!("{other:?} namespaces are not supported yet"),
                })
            }
        };
        *slot = true;
    }
    if !namespaces.pid {
        return Err(Error::Unsupported {
            field: "linux.namespaces".into(),
            why: "mydocker needs a pid namespace so far (killing its init is how the container ends); add {\"type\": \"pid\"}".into(),
        });
    }
    if !namespaces.mount {
        return Err(Error::Unsupported {
            field: "linux.namespaces".into(),
            why: "mydocker needs a mount namespace to switch the root; add {\"type\": \"mount\"}"
                .into(),
        });
    }
    Ok(namespaces)
}

/// Memory, CPU and pids limits, in the units the cgroup files take.
fn limits(resources: &oci_spec::runtime::LinuxResources) -> Result<Limits> {
    let mut limits = Limits::default();
    let positive = |value: Option<i64>| value.filter(|v| *v > 0).map(|v| v as u64);
    if let Some(memory) = resources.memory() {
        limits.memory = positive(memory.limit());
        limits.memory_swap = match memory.swap() {
            Some(-1) => Some(SwapLimit::Unlimited),
            swap => positive(swap).map(SwapLimit::Total),
        };
    }
    if let Some(cpu) = resources.cpu() {
        limits.cpu_shares = cpu.shares();
        let period = cpu.period().unwrap_or(CFS_PERIOD_US);
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            if period != CFS_PERIOD_US {
                return Err(Error::Unsupported {
                    field: "linux.resources.cpu.period".into(),
                    why: format!(
                        "{period}: mydocker sets quotas over a {CFS_PERIOD_US} µs period so far"
                    ),
                });
            }
            limits.cpus = Some(NanoCpus(quota as u64 * 1_000_000_000 / CFS_PERIOD_US));
        }
        let ids = |field: &'static str, text: &Option<String>| -> Result<Option<IdSet>> {
            text.as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| IdSet::parse(field, t))
                .transpose()
        };
        limits.cpuset_cpus = ids("linux.resources.cpu.cpus", cpu.cpus())?;
        limits.cpuset_mems = ids("linux.resources.cpu.mems", cpu.mems())?;
    }
    if let Some(pids) = resources.pids() {
        limits.pids = positive(Some(pids.limit()));
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(process: &str, linux: &str) -> String {
        format!(
            r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}}, "hostname": "box",
                "process": {process}, "linux": {linux}, "annotations": {{"any": "thing"}}}}"#
        )
    }

    const PROCESS: &str = r#"{"args": ["sh", "-c", "true"], "cwd": "/work",
        "env": ["PATH=/bin", "A=b=c"], "user": {"uid": 0, "gid": 0},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
        "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL", "CAP_CHOWN"]}}"#;
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
        assert_eq!(spec.limits.cpus, Some(NanoCpus(500_000_000)));
        assert_eq!(spec.limits.pids, Some(64));
        let (chown, kill) = (
            ::caps::Capability::CAP_CHOWN.bitmask(),
            ::caps::Capability::CAP_KILL.bitmask(),
        );
        assert_eq!(spec.security.capabilities, chown | kill);
        assert!(!spec.tty && !spec.security.read_only_rootfs);
        assert_eq!(
            spec.rlimits,
            [Rlimit::new(Resource::Nofile, 1024, 4096).unwrap()]
        );
    }

    #[test]
    fn an_unsupported_field_is_refused_by_its_path() {
        for (text, field) in [
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount"}], "sysctl": {"a": "b"}}"#,
                ),
                "linux.sysctl",
            ),
            (
                config(
                    &PROCESS.replace("\"cwd\"", "\"oomScoreAdj\": 5, \"cwd\""),
                    "{}",
                ),
                "process.oomScoreAdj",
            ),
            (
                config(
                    PROCESS,
                    r#"{"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]}"#,
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
                    r#"{"namespaces": [{"type": "mount"}, {"type": "user"}]}"#,
                ),
                "linux.namespaces.type",
            ),
            (
                config(PROCESS, r#"{"namespaces": [{"type": "mount"}]}"#),
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
    fn the_default_config_is_one_create_takes() {
        let text = default_config().to_string();
        let spec = from_config(&text, Path::new("/b")).unwrap();
        assert_eq!(spec.args, ["sh"]);
        assert_eq!(spec.security.capabilities, crate::security::DEFAULT);
        assert!(spec.security.no_new_privileges && spec.security.read_only_rootfs);
        let ns = spec.namespaces;
        assert!(ns.pid && ns.net && ns.ipc && ns.uts && ns.mount && ns.cgroup);
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
