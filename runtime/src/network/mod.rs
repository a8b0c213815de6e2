//! Networks: a bridge per network with IPAM, NAT and port mapping, and how a
//! container joins one (a veth pair, its peer renamed `eth0` inside).

pub mod ipam;
pub mod link;
pub mod nat;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::spec::network::{parse_publish, Endpoint, Request};
use ipam::{LeaseFile, Leases};
use nat::{NetworkRules, Publish};

/// One bridge network, as stored in `<root>/networks/<name>/network.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The bridge device, `mdbr` and 8 hex digits: unique, and within the
    /// kernel's 15-byte limit on device names.
    pub bridge: String,
    pub created: u64,
}

/// What the network layer needs to know of the containers, whose records
/// live above it (`crate::store` implements this): who holds a place on a
/// network and whether it holds it now. The network never reads the
/// container database itself.
pub trait Holders {
    /// Every container with an endpoint.
    fn holders(&self) -> Result<Vec<Holder>>;
}

/// A container with a place on a network.
#[derive(Debug, Clone)]
pub struct Holder {
    pub id: String,
    pub name: String,
    pub endpoint: Endpoint,
    /// It runs: its published ports are in the NAT table.
    pub running: bool,
    /// It runs, or is still starting with its launcher alive: its ports
    /// are taken either way.
    pub holds_ports: bool,
}

/// The networks under a state root.
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    pub fn new(root: &Path) -> Networks {
        Networks {
            dir: root.join("networks"),
        }
    }

    fn leases(&self, name: &str) -> LeaseFile {
        LeaseFile::new(self.dir.join(name).join("leases.json"))
    }

    pub fn get(&self, name: &str) -> Result<Network> {
        read_network(&self.dir.join(name)).map_err(|e| match e {
            Error::Io { .. } => Error::not_found(
                "network",
                name,
                "no such network: `mydocker network ls` lists them",
            ),
            damaged => damaged,
        })
    }

    /// Every network whose record reads, oldest first.
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut networks: Vec<Network> = self
            .names()
            .iter()
            .filter_map(|name| self.get(name).ok())
            .collect();
        networks.sort_by_key(|n| n.created);
        Ok(networks)
    }

    /// Every network whose record does not parse, with the error saying so.
    pub fn damaged(&self) -> Vec<(String, Error)> {
        self.names()
            .into_iter()
            .filter_map(|name| match self.get(&name) {
                Err(e @ Error::Corrupt { .. }) => Some((name, e)),
                _ => None,
            })
            .collect()
    }

    /// The names of the network directories; a leading dot marks the
    /// runtime's own files (locks, a create or remove in progress).
    fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect()
    }

    /// What the bridge of network `name` is called in the kernel's
    /// `ifalias`: the network and a digest of this state root, so a bridge
    /// whose record is lost can be found, and never another root's.
    fn alias(&self, name: &str) -> String {
        let root = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        // FNV-1a: a stable digest, short enough for the 255-byte alias.
        let digest = root
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("mydocker network {name} {digest:016x}")
    }

    /// The leases of a network, for `network inspect`.
    pub fn leased(&self, name: &str) -> Result<Leases> {
        self.leases(name).read()
    }

    /// Creates a network: checks everything first, then the bridge, then
    /// the files, undoing what was done if a later step fails.
    pub fn create(
        &self,
        holders: &dyn Holders,
        name: &str,
        subnet: &str,
        gateway: Option<&str>,
    ) -> Result<Network> {
        check_name(name)?;
        let subnet = parse_subnet(subnet)?;
        let gateway = match gateway {
            Some(text) => text
                .parse::<Ipv4Addr>()
                .map_err(|_| Error::invalid("--gateway", text, "expected an IPv4 address"))?,
            None => subnet.hosts().next().expect("a /30 or larger has hosts"),
        };
        if !subnet.contains(&gateway)
            || gateway == subnet.network()
            || gateway == subnet.broadcast()
        {
            return Err(Error::invalid(
                "--gateway",
                gateway.to_string(),
                format!("expected a host address inside {subnet}"),
            ));
        }
        let _lock = lock(&self.dir)?;
        match self.get(name) {
            Err(Error::NotFound { .. }) => {}
            Ok(_) => {
                return Err(Error::conflict(
                    "network name",
                    name,
                    "a network of that name exists",
                ))
            }
            // Its subnet and bridge are unknown: only `network rm` may judge it.
            Err(damaged) => return Err(damaged),
        }
        let existing = self.list()?;
        if let Some(other) = existing
            .iter()
            .find(|n| n.subnet.contains(&subnet.network()) || subnet.contains(&n.subnet.network()))
        {
            return Err(Error::conflict(
                "--subnet",
                subnet.to_string(),
                format!("it overlaps network {} ({})", other.name, other.subnet),
            ));
        }
        let network = Network {
            name: name.to_owned(),
            subnet,
            gateway,
            bridge: format!("mdbr{}", &crate::ident::new_id()[..8]),
            created: crate::ident::now(),
        };
        // The record is written before the bridge exists, in a staging
        // directory renamed into place last, after the NAT table has the
        // network's rules: a create killed at any point leaves either
        // nothing or a `.new-` directory naming the bridge, which the next
        // command removes with the rules (`finish_interrupted`).
        let staging = self.dir.join(format!(".new-{name}"));
        let made = (|| {
            std::fs::create_dir_all(&staging)
                .map_err(Error::io(format!("create {}", staging.display())))?;
            let leases =
                serde_json::to_vec_pretty(&Leases::new(subnet, gateway)).expect("serializes");
            crate::files::write_atomic(&staging.join("leases.json"), &leases)?;
            crate::files::write_atomic(
                &staging.join("network.json"),
                &serde_json::to_vec_pretty(&network).expect("serializes"),
            )?;
            link::create_bridge(
                &network.bridge,
                &self.alias(name),
                gateway,
                subnet.prefix_len(),
            )?;
            // Containers reach beyond their bridge only if the host forwards.
            nat::sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
            // Lets 127.0.0.1:HOSTPORT be DNATed onto this bridge, and only this one.
            nat::sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", network.bridge),
                "1",
            )?;
            sync_with(&self.dir, holders, Some(&network))?;
            let dir = self.dir.join(name);
            std::fs::rename(&staging, &dir).map_err(Error::io(format!(
                "rename {} to {}",
                staging.display(),
                dir.display()
            )))
        })();
        // The rename is the last step: on any failure the network's name
        // was never taken, and what is undone is only what this made.
        if let Err(e) = made {
            let _ = link::delete(&network.bridge);
            let _ = std::fs::remove_dir_all(&staging);
            let _ = sync(&self.dir, holders);
            return Err(e);
        }
        Ok(network)
    }

    /// Removes a network, its bridge and its rules; refused while any
    /// container (running or not) is attached. A network whose record is
    /// damaged is removed too: its bridge is found by its alias.
    pub fn remove(&self, holders: &dyn Holders, name: &str) -> Result<()> {
        let _lock = lock(&self.dir)?;
        // A run takes its address under this lock: none can join meanwhile.
        let _ports = crate::files::lock_file(&self.dir.join(".ports.lock"))?;
        match self.get(name) {
            Ok(_) | Err(Error::Corrupt { .. }) => {}
            Err(missing) => return Err(missing),
        }
        let attached: Vec<String> = holders
            .holders()?
            .into_iter()
            .filter(|h| h.endpoint.network == name)
            .map(|h| h.name)
            .collect();
        if !attached.is_empty() {
            return Err(Error::conflict(
                "network",
                name,
                format!(
                    "containers are attached ({}): remove them first",
                    attached.join(", ")
                ),
            ));
        }
        // A damaged lease file holds nothing worth keeping the network for.
        let leased = self
            .leases(name)
            .read()
            .map(|l| l.leased.len())
            .unwrap_or(0);
        if leased > 0 {
            return Err(Error::conflict(
                "network",
                name,
                format!("{leased} address(es) are still leased to starting containers: try again"),
            ));
        }
        // Renamed first, so that a remove killed half-way is seen and
        // finished by the next command rather than left as a network
        // without its bridge.
        let doomed = self.dir.join(format!(".removing-{name}"));
        std::fs::rename(self.dir.join(name), &doomed)
            .map_err(Error::io(format!("remove network {name}")))?;
        self.finish_removal(&doomed, name, holders)
    }

    /// Finishes the network whose directory `dir` was being created or
    /// removed: its bridge, then its rules, then the directory, so that a
    /// removal killed at any step is still seen and finished.
    fn finish_removal(&self, dir: &Path, name: &str, holders: &dyn Holders) -> Result<()> {
        match read_network(dir) {
            // Only a bridge of ours: the record is only a file.
            Ok(network) if is_bridge_name(&network.bridge) => link::delete(&network.bridge)?,
            Ok(_) => {}
            Err(_) => {
                // By its alias; never one that a readable record names
                // (the same network made again after a failed removal).
                let named: Vec<String> = self.list()?.into_iter().map(|n| n.bridge).collect();
                for bridge in link::named_by_alias(&self.alias(name))? {
                    if is_bridge_name(&bridge) && !named.contains(&bridge) {
                        link::delete(&bridge)?;
                    }
                }
            }
        }
        sync(&self.dir, holders)?;
        std::fs::remove_dir_all(dir).map_err(Error::io(format!("remove {}", dir.display())))
    }

    /// Finishes every network create or remove that was killed half-way
    /// (a `.new-` or `.removing-` directory): its bridge and directory go,
    /// and the NAT table is rebuilt. Returns the networks finished. Costs
    /// one directory read when there is nothing to do.
    pub fn finish_interrupted(&self, holders: &dyn Holders) -> Result<Vec<String>> {
        let interrupted = || -> Vec<(String, String)> {
            let Ok(entries) = std::fs::read_dir(&self.dir) else {
                return Vec::new();
            };
            entries
                .filter_map(|e| e.ok())
                // A real directory, never a link leading elsewhere.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| {
                    let entry = e.file_name().to_string_lossy().into_owned();
                    let name = entry
                        .strip_prefix(".new-")
                        .or_else(|| entry.strip_prefix(".removing-"))?
                        .to_owned();
                    Some((entry, name))
                })
                .collect()
        };
        if interrupted().is_empty() {
            return Ok(Vec::new());
        }
        // Under the lock, a `.new-` directory is never one being made now.
        let _lock = lock(&self.dir)?;
        let mut finished = Vec::new();
        let mut first_error = None;
        // One that cannot be finished does not keep the others.
        for (entry, name) in interrupted() {
            match self.finish_removal(&self.dir.join(&entry), &name, holders) {
                Ok(()) => finished.push(name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(finished), Err)
    }
}

/// Whether `name` is a bridge name this runtime gives: `mdbr` and 8 hex digits.
fn is_bridge_name(name: &str) -> bool {
    name.strip_prefix("mdbr")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads the record in a network directory.
fn read_network(dir: &Path) -> Result<Network> {
    let path = dir.join("network.json");
    let text =
        std::fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())))?;
    serde_json::from_str(&text).map_err(Error::corrupt(&path))
}

/// Takes an address on the network for the container `id`, after
/// checking that its published ports are free, and has `save` record the
/// endpoint. The check, the lease and the record are one step under a
/// lock, so two runs can never both take one host port. A container that
/// is still starting (its launcher alive) counts as holding its ports.
pub fn reserve(
    root: &Path,
    holders: &dyn Holders,
    id: &str,
    request: &Request,
    save: impl FnOnce(&Endpoint) -> Result<()>,
) -> Result<Network> {
    let networks = Networks::new(root);
    networks.get(&request.network)?;
    let _guard = crate::files::lock_file(&networks.dir.join(".ports.lock"))?;
    // Again under the lock, which `network rm` holds too: the network
    // cannot go between this and the lease.
    let network = networks.get(&request.network)?;
    let holding: Vec<Holder> = holders
        .holders()?
        .into_iter()
        .filter(|h| h.id != id && h.holds_ports)
        .collect();
    for (i, publish) in request.publish.iter().enumerate() {
        let spec = describe(publish);
        if request.publish[..i].iter().any(|p| p.clashes(publish)) {
            return Err(Error::invalid(
                "--publish",
                spec,
                "the same host port is given twice",
            ));
        }
        if let Some(owner) = holding
            .iter()
            .find(|h| h.endpoint.publish.iter().any(|p| p.clashes(publish)))
        {
            return Err(Error::conflict(
                "--publish",
                spec,
                format!("container {} already publishes that host port", owner.name),
            ));
        }
    }
    let address = networks
        .leases(&network.name)
        .update(|leases| leases.allocate(id, request.ip))?;
    let endpoint = Endpoint {
        network: network.name.clone(),
        address,
        publish: request.publish.clone(),
    };
    if let Err(e) = save(&endpoint) {
        let _ = networks.leases(&network.name).update(|leases| {
            leases.release(id);
            Ok(())
        });
        return Err(e);
    }
    Ok(network)
}

/// Connects the container (by its init's pid) to the network's bridge.
pub fn attach(network: &Network, endpoint: &Endpoint, pid: i32, id: &str) -> Result<()> {
    let (host_end, peer) = (format!("veth{}", &id[..8]), format!("vp{}", &id[..8]));
    let result = link::connect(
        pid,
        &link::Attachment {
            bridge: &network.bridge,
            host_end: &host_end,
            peer: &peer,
            address: endpoint.address,
            prefix: network.subnet.prefix_len(),
            gateway: network.gateway,
        },
    );
    if result.is_err() {
        // Half a pair would outlive the container; the peer dies with it.
        let _ = link::delete(&host_end);
    }
    result
}

/// Deletes the host end of a container's veth pair once it has exited. The
/// kernel would delete it with the container's namespace, but from a
/// workqueue, some time later; teardown should not leave that to chance.
pub fn detach(id: &str) {
    let _ = link::delete(&format!("veth{}", &id[..8]));
}

/// Releases a removed container's address and drops its rules.
/// A container on no network costs nothing here, and only one that
/// published ports needs the NAT table rewritten: masquerade rules belong
/// to networks, not to containers.
pub fn forget(
    root: &Path,
    holders: &dyn Holders,
    id: &str,
    endpoint: Option<&Endpoint>,
) -> Result<()> {
    let Some(endpoint) = endpoint else {
        return Ok(());
    };
    let networks = Networks::new(root);
    if networks.get(&endpoint.network).is_ok() {
        networks.leases(&endpoint.network).update(|leases| {
            leases.release(id);
            Ok(())
        })?;
    }
    if endpoint.publish.is_empty() {
        return Ok(());
    }
    sync(&root.join("networks"), holders)
}

/// Releases every address leased to `id`, in every network: for a
/// container whose record, and so its endpoint, is lost.
pub fn forget_everywhere(root: &Path, id: &str) -> Result<()> {
    let networks = Networks::new(root);
    let mut first_error = Ok(());
    for network in networks.list()? {
        let released = networks.leases(&network.name).update(|leases| {
            leases.release(id);
            Ok(())
        });
        // One damaged lease file must not keep the others' addresses.
        if first_error.is_ok() {
            first_error = released;
        }
    }
    first_error
}

/// Regenerates the NAT table from the networks and the running containers.
/// Does nothing (and needs no nft) when there has never been a network.
pub fn sync(dir: &Path, holders: &dyn Holders) -> Result<()> {
    sync_with(dir, holders, None)
}

/// [`sync`], with the rules of a network still being created.
fn sync_with(dir: &Path, holders: &dyn Holders, staged: Option<&Network>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    // Reading the state and applying it happen under one lock (apart from
    // the one `create` and `remove` hold): two runs syncing at once must not
    // let the older view be applied last.
    let _guard = crate::files::lock_file(&dir.join(".nat.lock"))?;
    let mut networks = Networks {
        dir: dir.to_owned(),
    }
    .list()?;
    networks.extend(staged.cloned());
    let rules: Vec<NetworkRules<'_>> = networks
        .iter()
        .map(|n| NetworkRules {
            subnet: n.subnet,
            bridge: &n.bridge,
        })
        .collect();
    let ports: Vec<(Ipv4Addr, Publish)> = holders
        .holders()?
        .into_iter()
        .filter(|h| h.running)
        .map(|h| h.endpoint)
        .flat_map(|e| e.publish.into_iter().map(move |p| (e.address, p)))
        .collect();
    nat::apply(&nat::ruleset(&rules, &ports))
}

/// The `/etc/hosts` a container on `endpoint` gets.
pub fn hosts_file(hostname: &str, name: &str, endpoint: Option<&Endpoint>) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(endpoint) = endpoint {
        text.push_str(&format!("{}\t{hostname} {name}\n", endpoint.address));
    }
    text
}

fn describe(p: &Publish) -> String {
    let ip = p.host_ip.map(|ip| format!("{ip}:")).unwrap_or_default();
    format!(
        "{ip}{}:{}/{}",
        p.host_port,
        p.container_port,
        p.protocol.name()
    )
}

/// Parses a subnet: an IPv4 CIDR with a prefix from /8 to /30.
pub fn parse_subnet(text: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = text.parse().map_err(|_| {
        Error::invalid(
            "--subnet",
            text,
            "expected an IPv4 CIDR such as 10.10.0.0/24",
        )
    })?;
    if !(8..=30).contains(&net.prefix_len()) {
        return Err(Error::invalid(
            "--subnet",
            text,
            "the prefix must be from /8 to /30",
        ));
    }
    Ok(net.trunc())
}

/// A network name as `network create` takes it: never a path, never
/// `host` or `none`.
pub fn check_name(name: &str) -> Result<()> {
    if !crate::parse::is_plain_name(name, 64)
        || name.starts_with('.')
        || name == "host"
        || name == "none"
    {
        return Err(Error::invalid(
            "network name",
            name,
            "expected 1 to 64 of letters, digits, '_', '.' and '-', not starting with '.', other than host and none",
        ));
    }
    Ok(())
}

fn lock(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
    crate::files::lock_file(&dir.join(".lock"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::network::Protocol;
    use proptest::prelude::*;

    #[test]
    fn subnets_and_publish_specs_parse_or_say_why_not() {
        assert_eq!(
            parse_subnet("10.1.2.3/24").unwrap().to_string(),
            "10.1.2.0/24"
        );
        for bad in ["10.0.0.0", "10.0.0.0/31", "10.0.0.0/7", "300.0.0.0/24", "x"] {
            assert!(
                parse_subnet(bad)
                    .unwrap_err()
                    .to_string()
                    .contains(&format!("{bad:?}")),
                "{bad}"
            );
        }
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.protocol),
            (Some(Ipv4Addr::LOCALHOST), 8080, 80, Protocol::Udp)
        );
        assert_eq!(parse_publish("80:80").unwrap().protocol, Protocol::Tcp);
        for bad in ["0:80", "80:65536", "80", "80:80/sctp", "a:80:80", "1:2:3:4"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
        assert!(parse_publish("80:80/sctp")
            .unwrap_err()
            .to_string()
            .contains("unknown protocol"));
    }

    proptest! {
        #[test]
        fn publish_specs_round_trip(host in 1u16.., ctr in 1u16.., udp: bool, ip: Option<[u8; 4]>) {
            let p = Publish { host_ip: ip.map(Ipv4Addr::from), host_port: host, container_port: ctr, protocol: if udp { Protocol::Udp } else { Protocol::Tcp } };
            prop_assert_eq!(parse_publish(&describe(&p)).unwrap(), p);
        }

        #[test]
        fn cidrs_round_trip(a: [u8; 4], prefix in 8u8..=30) {
            let net = Ipv4Net::new(Ipv4Addr::from(a), prefix).unwrap().trunc();
            prop_assert_eq!(parse_subnet(&net.to_string()).unwrap(), net);
        }
    }
}
