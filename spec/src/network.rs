//! What a container asks of the network (`--network`, `--ip`, `-p`) and
//! the place it got, as plain values; `crate::network` does the work.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What `run --network` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub network: String,
    pub ip: Option<Ipv4Addr>,
    pub publish: Vec<Publish>,
}

/// A container's place on a network, kept in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub address: Ipv4Addr,
    pub publish: Vec<Publish>,
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// `-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl Publish {
    /// Whether two publications would claim the same host socket.
    pub fn clashes(&self, other: &Publish) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

/// Parses `-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp]`.
pub fn parse_publish(text: &str) -> Result<Publish> {
    let invalid = |why: &str| Error::invalid("--publish", text, why);
    let (spec, protocol) = match text.split_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((_, other)) => {
            return Err(invalid(&format!(
                "unknown protocol {other:?}: expected tcp or udp"
            )))
        }
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [h, c] => (None, *h, *c),
        [ip, h, c] => (
            Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| invalid("the host IP must be an IPv4 address"))?,
            ),
            *h,
            *c,
        ),
        _ => {
            return Err(invalid(
                "expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]",
            ))
        }
    };
    let port = |p: &str| match p.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(invalid("ports are numbers from 1 to 65535")),
    };
    Ok(Publish {
        host_ip,
        host_port: port(host_port)?,
        container_port: port(container_port)?,
        protocol,
    })
}
