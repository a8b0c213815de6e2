//! `inspect` and `--format`: containers, images and networks in the JSON
//! shape docker prints them, and Go templates over that shape.
//!
//! docker's `--format` is Go's `text/template` applied to the object
//! `inspect` would print (`{{.State.Pid}}`, `{{range .Mounts}}…{{end}}`),
//! with a few functions of docker's own, of which `json` is the one
//! people reach for (`{{json .Config}}`). The template engine is the
//! `gotmpl` crate, a port of Go's; the functions are added here.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::ident::rfc3339;
use crate::image::{ImageMeta, Images};
use crate::network::Networks;
use crate::store::{Record, Status, Store};

/// What `inspect NAME` names, looked up in docker's order: containers,
/// then images, then networks; with `kind` (`--type`), only that kind.
/// A name that could be a path is never read as one.
pub fn find(store: &Store, name: &str, kind: Option<&str>) -> Result<Value> {
    let wants = |k: &str| kind.is_none_or(|kind| kind == k);
    let mut first_error = None;
    if wants("container") {
        match store.resolve(name) {
            Ok(record) => return Ok(container(store, &record)),
            // An ambiguous id prefix, a damaged store: said as it is.
            Err(e) if kind.is_none() && !matches!(e, Error::NotFound { .. }) => return Err(e),
            Err(e) => first_error = Some(e),
        }
    }
    if wants("image") {
        match Images::check_name(name).and_then(|()| Images::new(store.root()).get(name)) {
            Ok(meta) => return Ok(image(&meta)),
            Err(e) => drop(first_error.get_or_insert(e)),
        }
    }
    if wants("network") {
        let networks = Networks::new(store.root());
        let found = crate::network::check_name(name).and_then(|()| {
            let network = networks.get(name)?;
            Ok((network, networks.leased(name)?))
        });
        match found {
            Ok((network, leases)) => return Ok(self::network(store, &network, &leases.leased)),
            Err(e) => drop(first_error.get_or_insert(e)),
        }
    }
    if wants("volume") {
        let volumes = crate::volume::Volumes::new(store.root());
        match volumes.get(name) {
            Ok(meta) => return Ok(crate::volume::inspect(&volumes, &meta)),
            Err(e) => drop(first_error.get_or_insert(e)),
        }
    }
    match (kind, first_error) {
        // One kind asked for: its own error says what was wrong.
        (Some(_), Some(e)) => Err(e),
        _ => Err(Error::not_found(
            "object",
            name,
            "no container, image, network or volume of that name (`mydocker ps -a`, `images`, `network ls`, `volume ls` list them)",
        )),
    }
}

/// A container as `docker inspect` shows it.
pub fn container(store: &Store, record: &Record) -> Value {
    let live = record.live_status();
    let running = live == Status::Running;
    let status = crate::lifecycle::state_word(record);
    let paused = status == "paused";
    let env_value = |key: &str| {
        record
            .env
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let dir = store.container_dir(&record.id);
    let limits = &record.limits;
    let mounts: Vec<Value> = record
        .volumes
        .iter()
        .map(|v| match &v.name {
            Some(name) => json!({
                "Type": "volume",
                "Name": name,
                "Source": crate::volume::Volumes::new(store.root()).data(name),
                "Destination": v.container,
                "Driver": "local",
                "Mode": if v.read_only { "ro" } else { "" },
                "RW": !v.read_only,
                "Propagation": "",
            }),
            None => json!({
                "Type": "bind",
                "Source": v.host,
                "Destination": v.container,
                "Mode": if v.read_only { "ro" } else { "rw" },
                "RW": !v.read_only,
                "Propagation": "rprivate",
            }),
        })
        .collect();
    let (ports, networks, address, gateway, prefix) = match &record.endpoint {
        Some(endpoint) => {
            let mut ports = serde_json::Map::new();
            for p in &endpoint.publish {
                let key = format!("{}/{}", p.container_port, p.protocol.name());
                let binding = json!({
                    "HostIp": p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
                    "HostPort": p.host_port.to_string(),
                });
                let entry = ports.entry(key).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    list.push(binding);
                }
            }
            let network = Networks::new(store.root()).get(&endpoint.network).ok();
            let gateway = network
                .as_ref()
                .map_or(String::new(), |n| n.gateway.to_string());
            let prefix = network.as_ref().map_or(0, |n| n.subnet.prefix_len());
            let networks = json!({
                endpoint.network.clone(): {
                    "IPAddress": endpoint.address.to_string(),
                    "Gateway": gateway,
                    "IPPrefixLen": prefix,
                }
            });
            (
                Value::Object(ports),
                networks,
                endpoint.address.to_string(),
                gateway,
                prefix,
            )
        }
        None => (json!({}), json!({}), String::new(), String::new(), 0),
    };
    let (path, args) = match record.args.split_first() {
        Some((path, args)) => (path.clone(), args.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let user = &record.user;
    json!({
        "Id": record.id,
        "Created": rfc3339(record.created),
        "Path": path,
        "Args": args,
        "State": {
            "Status": status,
            // docker's Running stays true between a policy's restarts.
            "Running": running || status == "restarting",
            "Paused": paused,
            "Restarting": status == "restarting",
            "OOMKilled": record.oom_killed,
            "Dead": false,
            "Pid": if running { record.pid } else { 0 },
            // docker's is 0 while it runs (a restarted one's record keeps
            // its last run's).
            "ExitCode": if running { 0 } else { record.exit_code.unwrap_or(0) },
            "Error": record.start_error.as_deref().unwrap_or_default(),
            "StartedAt": rfc3339(record.started.unwrap_or(record.created)),
            "FinishedAt": record.finished.map_or("0001-01-01T00:00:00Z".to_owned(), rfc3339),
        },
        "Image": record.image,
        "Name": format!("/{}", record.name),
        "RestartCount": record.restart_count,
        "Driver": "overlay",
        "LogPath": crate::lifecycle::log_path(store, &record.id),
        "HostConfig": {
            // docker lists binds and named volumes here, not anonymous ones.
            "Binds": record.volumes.iter().filter(|v| !v.anonymous).map(|v| format!(
                "{}:{}:{}",
                v.name.clone().unwrap_or_else(|| v.host.display().to_string()),
                v.container,
                if v.read_only { "ro" } else { "rw" }
            )).collect::<Vec<_>>(),
            "NetworkMode": record.endpoint.as_ref().map_or("none", |e| e.network.as_str()),
            "PortBindings": ports,
            "AutoRemove": record.auto_remove,
            "RestartPolicy": {
                "Name": record.restart.parts().0,
                "MaximumRetryCount": record.restart.parts().1,
            },
            "Memory": limits.memory.unwrap_or(0),
            "MemorySwap": match limits.memory_swap {
                Some(crate::spec::SwapLimit::Total(total)) => total as i64,
                Some(crate::spec::SwapLimit::Unlimited) => -1,
                None => limits.memory.map_or(0, |m| 2 * m as i64),
            },
            "NanoCpus": limits.cpus.map_or(0, |c| c.0),
            "CpuShares": limits.cpu_shares.unwrap_or(0),
            "CpusetCpus": limits.cpuset_cpus.as_ref().map(|s| s.to_string()).unwrap_or_default(),
            "CpusetMems": limits.cpuset_mems.as_ref().map(|s| s.to_string()).unwrap_or_default(),
            "PidsLimit": limits.pids,
            "Privileged": record.security.is_some_and(|s| !s.seccomp && !s.mask_paths),
            "ReadonlyRootfs": record.security.is_some_and(|s| s.read_only_rootfs),
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": record.lower,
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("merged"),
            },
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": env_value("HOSTNAME"),
            "User": if user.uid == 0 && user.gid == 0 { String::new() } else { format!("{}:{}", user.uid, user.gid) },
            "Env": record.env,
            "Cmd": record.args,
            "Image": record.image,
            "Labels": record.labels,
            "StopSignal": record.stop_signal.clone().unwrap_or_else(|| "SIGTERM".to_owned()),
            // As docker: null when not set, -1 for no limit.
            "StopTimeout": record.stop_timeout.map(|t| if t == u64::MAX { -1 } else { t as i64 }),
        },
        "NetworkSettings": {
            "IPAddress": address,
            "Gateway": gateway,
            "IPPrefixLen": prefix,
            "Ports": ports,
            "Networks": networks,
        },
    })
}

/// An image as `docker image inspect` shows it.
pub fn image(meta: &ImageMeta) -> Value {
    json!({
        "Id": meta.name,
        "RepoTags": [meta.name],
        "Created": rfc3339(meta.created),
        "Size": meta.size,
        "Comment": meta.source,
        "Config": { "Cmd": meta.cmd },
        "RootFS": { "Type": "layers" },
    })
}

/// A network as `docker network inspect` shows it, with the containers
/// that hold an address on it.
pub fn network(
    store: &Store,
    network: &crate::network::Network,
    leased: &BTreeMap<std::net::Ipv4Addr, String>,
) -> Value {
    let mut containers = serde_json::Map::new();
    for (address, id) in leased {
        let name = store.load(id).map(|r| r.name).unwrap_or_default();
        containers.insert(
            id.clone(),
            json!({
                "Name": name,
                "IPv4Address": format!("{address}/{}", network.subnet.prefix_len()),
            }),
        );
    }
    json!({
        "Name": network.name,
        "Id": network.bridge,
        "Created": rfc3339(network.created),
        "Driver": "bridge",
        "IPAM": { "Driver": "default", "Config": [{
            "Subnet": network.subnet.to_string(),
            "Gateway": network.gateway.to_string(),
        }]},
        "Options": { "com.docker.network.bridge.name": network.bridge },
        "Containers": containers,
    })
}

/// A `--format` template, parsed once and applied to each object.
pub struct Format {
    template: gotmpl::Template,
    text: String,
}

impl Format {
    /// Parses `text`, docker's functions included; `flag` names it in errors.
    pub fn parse(flag: &'static str, text: &str) -> Result<Format> {
        gotmpl::Template::new("format")
            .func("json", json_of)
            .func("upper", |args| {
                text_of(args, "upper").map(|s| s.to_uppercase().into())
            })
            .func("lower", |args| {
                text_of(args, "lower").map(|s| s.to_lowercase().into())
            })
            .parse(text)
            .map(|template| Format {
                template,
                text: text.to_owned(),
            })
            .map_err(|e| Error::invalid(flag, text, format!("a Go template: {e}")))
    }

    /// The template applied to `object`, with a final newline as docker
    /// prints each one.
    pub fn render(&self, flag: &'static str, object: &Value) -> Result<String> {
        let data = gotmpl::to_value(object).map_err(|e| Error::System(format!("{flag}: {e}")))?;
        let text = self.template.execute_to_string(&data).map_err(|e| {
            Error::invalid(flag, &self.text, format!("it failed on this object: {e}"))
        })?;
        Ok(text + "\n")
    }
}

/// A list command's `--format` (`ps`, `stats`), in docker's forms: `json`
/// prints each object on a line; `table TEMPLATE` applies the template to
/// `titles` first (each field's title), then to each object, and aligns
/// the tab-separated columns; any other text is a template for each
/// object. (`table` alone, the default table, is the caller's.)
pub fn format_list(format: &str, titles: &Value, objects: &[Value]) -> Result<String> {
    if format == "json" {
        return Ok(objects.iter().map(|o| o.to_string() + "\n").collect());
    }
    let (table, template) = match format.strip_prefix("table ") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let template = Format::parse("--format", template)?;
    let header = table.then_some(titles);
    let lines = header
        .into_iter()
        .chain(objects)
        .map(|o| template.render("--format", o))
        .collect::<Result<Vec<_>>>()?;
    if !table {
        return Ok(lines.concat());
    }
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            l.trim_end_matches('\n')
                .split('\t')
                .map(str::to_owned)
                .collect()
        })
        .collect();
    Ok(crate::lifecycle::align(&rows, "   "))
}

/// `ps --format`: [`format_list`] over docker's `ps` fields; `table` alone
/// is the default table.
pub fn ps_formatted(records: &[Record], format: &str) -> Result<String> {
    if format == "table" {
        return Ok(crate::lifecycle::ps_table(records));
    }
    let now = crate::store::now();
    let titles: serde_json::Map<String, Value> = ps_fields_names()
        .iter()
        .map(|f| (f.to_string(), Value::from(crate::lifecycle::ps_header(f))))
        .collect();
    let objects: Vec<Value> = records
        .iter()
        .map(|r| crate::lifecycle::ps_fields(r, now))
        .collect();
    format_list(format, &Value::Object(titles), &objects)
}

fn ps_fields_names() -> [&'static str; 10] {
    [
        "ID",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
        "State",
        "Labels",
    ]
}

/// docker's `json` function: the value as compact JSON.
fn json_of(args: &[gotmpl::Value]) -> gotmpl::Result<gotmpl::Value> {
    let [value] = args else {
        return Err(gotmpl::TemplateError::ArgCount {
            name: "json".into(),
            expected: 1,
            got: args.len(),
        });
    };
    Ok(gotmpl::Value::String(to_json(value).to_string().into()))
}

fn to_json(value: &gotmpl::Value) -> Value {
    use gotmpl::Value as V;
    match value {
        V::Nil => Value::Null,
        V::Bool(b) => json!(b),
        V::Int(n) => json!(n),
        V::Uint(n) => json!(n),
        V::Float(f) => json!(f),
        V::String(s) => json!(s.as_ref()),
        V::List(items) => Value::Array(items.iter().map(to_json).collect()),
        V::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn text_of(args: &[gotmpl::Value], name: &str) -> gotmpl::Result<String> {
    match args {
        [gotmpl::Value::String(s)] => Ok(s.to_string()),
        _ => Err(gotmpl::TemplateError::Exec(format!(
            "{name} takes one string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_dockers_common_forms() {
        let object = json!({
            "State": { "Pid": 42, "Status": "running" },
            "Config": { "Env": ["A=1"], "Labels": { "tier": "web" } },
            "Mounts": [{ "Source": "/srv" }, { "Source": "/data" }],
            "Name": "/web",
        });
        let render = |t: &str| {
            Format::parse("--format", t)
                .unwrap()
                .render("--format", &object)
                .unwrap()
        };
        assert_eq!(render("{{.State.Pid}}"), "42\n");
        assert_eq!(render("{{json .Config.Env}}"), "[\"A=1\"]\n");
        assert_eq!(render("{{index .Config.Labels \"tier\"}}"), "web\n");
        assert_eq!(
            render("{{range .Mounts}}{{.Source}} {{end}}"),
            "/srv /data \n"
        );
        assert_eq!(render("{{upper .State.Status}}"), "RUNNING\n");
        assert_eq!(
            render("{{if eq .State.Status \"running\"}}up{{end}}"),
            "up\n"
        );
        let bad = Format::parse("--format", "{{.State.Pid").err().unwrap();
        assert!(bad.to_string().contains("{{.State.Pid"), "{bad}");
    }
}
