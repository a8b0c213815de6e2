//! NAT and port mapping, as one nftables table that belongs to mydocker
//! (`ip mydocker`). The table is regenerated whole from the current state
//! (networks, and the published ports of running containers) and swapped in
//! atomically by one `nft -f` transaction, so no rule can outlive the thing
//! it was for: when nothing is left, neither is the table.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
pub use crate::spec::network::{Protocol, Publish};

pub const TABLE: &str = "mydocker";
const NFT: &str = "/usr/sbin/nft";

/// A network as the ruleset needs it.
pub struct NetworkRules<'a> {
    pub subnet: Ipv4Net,
    pub bridge: &'a str,
}

/// The table's text for these networks and (container address, port) pairs.
pub fn ruleset(networks: &[NetworkRules<'_>], ports: &[(Ipv4Addr, Publish)]) -> String {
    let mut forward = String::new();
    let mut postrouting = String::new();
    let mut dnat = String::new();
    for a in networks {
        // Containers of different networks cannot reach each other.
        for b in networks.iter().filter(|b| b.bridge != a.bridge) {
            let _ = writeln!(
                forward,
                "\t\tiifname \"{}\" oifname \"{}\" drop",
                a.bridge, b.bridge
            );
        }
        // Out of any interface but its own bridge, a container's source
        // address becomes the host's.
        let _ = writeln!(
            postrouting,
            "\t\tip saddr {} oifname != \"{}\" masquerade",
            a.subnet.trunc(),
            a.bridge
        );
        // Published ports reached at 127.0.0.1 from the host itself leave
        // with a loopback source, which the container could not answer.
        let _ = writeln!(
            postrouting,
            "\t\tip saddr 127.0.0.0/8 oifname \"{}\" masquerade",
            a.bridge
        );
    }
    for (address, publish) in ports {
        let host = match publish.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            // Only addresses of this machine: never hijack traffic meant elsewhere.
            None => "fib daddr type local".to_owned(),
        };
        let _ = writeln!(
            dnat,
            "\t\t{host} {} dport {} dnat to {address}:{}",
            publish.protocol.name(),
            publish.host_port,
            publish.container_port
        );
    }
    let mut text = format!("add table ip {TABLE}\ndelete table ip {TABLE}\n");
    if networks.is_empty() {
        return text;
    }
    let _ = write!(
        text,
        "table ip {TABLE} {{\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n{forward}\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{postrouting}\t}}\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n{dnat}\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n{dnat}\t}}\n}}\n"
    );
    text
}

/// Replaces the table with `text` in one transaction.
pub fn apply(text: &str) -> Result<()> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Privilege(format!(
                "{NFT} is missing: networking uses nftables for NAT and port mapping; install it with `apt-get install nftables`"
            )),
            _ => Error::io(format!("run {NFT}"))(e),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .map_err(Error::io("write the ruleset to nft"))?;
    let output = child
        .wait_with_output()
        .map_err(Error::io("wait for nft"))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        return Err(Error::System(format!(
            "nft refused the ruleset: {}",
            why.lines().next().unwrap_or("").trim()
        )));
    }
    Ok(())
}

/// Writes a `/proc/sys` switch, as narrowly as it goes (per interface where
/// the kernel allows).
pub fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(Error::io(format!("set {path} to {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_deletes_the_table() {
        let text = ruleset(&[], &[]);
        assert_eq!(text, "add table ip mydocker\ndelete table ip mydocker\n");
    }

    #[test]
    fn networks_get_masquerade_isolation_and_dnat() {
        let a = NetworkRules {
            subnet: "10.1.0.0/24".parse().unwrap(),
            bridge: "mdbr-a",
        };
        let b = NetworkRules {
            subnet: "10.2.0.0/24".parse().unwrap(),
            bridge: "mdbr-b",
        };
        let publish = Publish {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let text = ruleset(&[a, b], &[("10.1.0.2".parse().unwrap(), publish)]);
        assert!(
            text.contains("ip saddr 10.1.0.0/24 oifname != \"mdbr-a\" masquerade"),
            "{text}"
        );
        assert!(
            text.contains("iifname \"mdbr-a\" oifname \"mdbr-b\" drop"),
            "{text}"
        );
        assert!(
            text.contains("fib daddr type local tcp dport 8080 dnat to 10.1.0.2:80"),
            "{text}"
        );
    }

    #[test]
    fn publications_clash_on_the_same_socket() {
        let p = |ip: Option<&str>, port, protocol| Publish {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: port,
            container_port: 1,
            protocol,
        };
        assert!(p(None, 80, Protocol::Tcp).clashes(&p(Some("127.0.0.1"), 80, Protocol::Tcp)));
        assert!(!p(None, 80, Protocol::Tcp).clashes(&p(None, 80, Protocol::Udp)));
        assert!(!p(Some("127.0.0.1"), 80, Protocol::Tcp).clashes(&p(
            Some("127.0.0.2"),
            80,
            Protocol::Tcp
        )));
    }
}
