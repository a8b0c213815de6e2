//! IP address management for one network: which addresses are leased to
//! which container, persisted as JSON and changed only under a file lock,
//! so concurrent `run`s never share an address.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The leases of one subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Address → container id.
    pub leased: BTreeMap<Ipv4Addr, String>,
}

impl Leases {
    pub fn new(subnet: Ipv4Net, gateway: Ipv4Addr) -> Leases {
        Leases {
            subnet,
            gateway,
            leased: BTreeMap::new(),
        }
    }

    /// Leases `wanted`, or the lowest free address, to `owner`. The network,
    /// gateway and broadcast addresses are never handed out. An owner that
    /// holds a lease already (an exited container started again) keeps it.
    pub fn allocate(&mut self, owner: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let held = self
            .leased
            .iter()
            .find(|(_, o)| *o == owner)
            .map(|(ip, _)| *ip);
        if let Some(ip) = held.filter(|ip| wanted.is_none_or(|w| w == *ip)) {
            return Ok(ip);
        }
        let usable = |ip: &Ipv4Addr| {
            self.subnet.contains(ip)
                && *ip != self.subnet.network()
                && *ip != self.subnet.broadcast()
                && *ip != self.gateway
        };
        let address = match wanted {
            Some(ip) if !usable(&ip) => {
                return Err(Error::invalid(
                    "--ip",
                    ip.to_string(),
                    format!(
                        "expected a host address of {} other than the gateway {}",
                        self.subnet, self.gateway
                    ),
                ))
            }
            Some(ip) if self.leased.contains_key(&ip) => {
                return Err(Error::conflict(
                    "--ip",
                    ip.to_string(),
                    "that address is taken by another container",
                ))
            }
            Some(ip) => ip,
            None => self
                .subnet
                .hosts()
                .find(|ip| usable(ip) && !self.leased.contains_key(ip))
                .ok_or_else(|| {
                    Error::conflict(
                        "network",
                        self.subnet.to_string(),
                        "every address of the subnet is in use (the subnet is exhausted)",
                    )
                })?,
        };
        self.leased.insert(address, owner.to_owned());
        Ok(address)
    }

    /// Releases every address leased to `owner`.
    pub fn release(&mut self, owner: &str) {
        self.leased.retain(|_, o| o != owner);
    }
}

/// The lease file of a network, and the lock that guards it.
pub struct LeaseFile {
    path: PathBuf,
}

impl LeaseFile {
    pub fn new(path: PathBuf) -> LeaseFile {
        LeaseFile { path }
    }

    /// Reads the leases, lets `change` modify them, and writes them back
    /// atomically, all under an exclusive lock.
    pub fn update<T>(&self, change: impl FnOnce(&mut Leases) -> Result<T>) -> Result<T> {
        let _guard = crate::files::lock_file(&self.path.with_extension("lock"))?;
        let mut leases = self.read()?;
        let result = change(&mut leases)?;
        crate::files::write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&leases).expect("leases serialize"),
        )?;
        Ok(result)
    }

    pub fn read(&self) -> Result<Leases> {
        let text = fs::read_to_string(&self.path)
            .map_err(Error::io(format!("read {}", self.path.display())))?;
        serde_json::from_str(&text).map_err(Error::corrupt(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(text: &str) -> Leases {
        let subnet: Ipv4Net = text.parse().unwrap();
        Leases::new(subnet, subnet.hosts().next().unwrap())
    }

    #[test]
    fn special_addresses_are_never_handed_out() {
        let mut leases = net("10.9.0.0/30");
        // A /30 has two hosts: the gateway takes one, one is left.
        assert_eq!(
            leases.allocate("a", None).unwrap(),
            "10.9.0.2".parse::<Ipv4Addr>().unwrap()
        );
        let exhausted = leases.allocate("b", None).unwrap_err();
        assert!(exhausted.to_string().contains("exhausted"));
        assert_eq!(exhausted.kind(), crate::Kind::Conflict);
        for special in ["10.9.0.0", "10.9.0.1", "10.9.0.3", "10.9.1.5"] {
            let refused = leases.allocate("c", Some(special.parse().unwrap()));
            assert_eq!(refused.unwrap_err().kind(), crate::Kind::Input, "{special}");
        }
        // A free address is the user's to ask for; a leased one is a conflict.
        let taken = leases.allocate("c", Some("10.9.0.2".parse().unwrap()));
        assert_eq!(taken.unwrap_err().kind(), crate::Kind::Conflict);
        // Its holder asking again (a restart) gets it again, and only once.
        assert_eq!(
            leases.allocate("a", None).unwrap(),
            "10.9.0.2".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(leases.leased.len(), 1);
    }

    proptest! {
        #[test]
        fn no_address_is_leased_twice_and_release_frees(prefix in 24u8..=28, owners in 1usize..40, released in 0usize..40) {
            let mut leases = net(&format!("10.20.0.0/{prefix}"));
            let mut given = Vec::new();
            for i in 0..owners {
                if let Ok(ip) = leases.allocate(&format!("c{i}"), None) {
                    prop_assert!(!given.contains(&ip));
                    given.push(ip);
                }
            }
            let capacity = (1usize << (32 - prefix)) - 3;
            prop_assert_eq!(given.len(), owners.min(capacity));
            let victim = format!("c{}", released % owners);
            let freed = leases.leased.iter().find(|(_, o)| **o == victim).map(|(ip, _)| *ip);
            leases.release(&victim);
            if let Some(ip) = freed {
                prop_assert_eq!(leases.allocate("again", Some(ip)).unwrap(), ip);
            }
        }

        #[test]
        fn leases_survive_a_save_and_load(owners in 0usize..20) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("leases.json");
            crate::files::write_atomic(&path, &serde_json::to_vec(&net("10.30.0.0/24")).unwrap()).unwrap();
            let file = LeaseFile::new(path);
            for i in 0..owners {
                file.update(|l| l.allocate(&format!("c{i}"), None)).unwrap();
            }
            let loaded = file.read().unwrap();
            prop_assert_eq!(loaded.leased.len(), owners);
            prop_assert_eq!(serde_json::from_slice::<Leases>(&serde_json::to_vec(&loaded).unwrap()).unwrap(), loaded);
        }
    }
}
