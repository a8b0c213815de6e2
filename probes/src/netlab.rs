//! The network lab shared by the `net.*` probes: a private namespace with
//! the probe network in it, and TCP exchanges judged by the kernel's answer,
//! from either side of the veth.

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::inside::Helper;
use crate::lab::{Lab, LabError};
use crate::probe::Needs;

/// What a probe on the probe network needs: veth pairs, a bridge, and the
/// nftables NAT the runtime writes (masquerade, and `fib daddr type local`
/// with dnat for published ports).
pub const NEEDS: Needs = Needs {
    config: &[
        "NET_NS",
        "VETH",
        "BRIDGE",
        "NF_NAT",
        "NFT_NAT",
        "NFT_MASQ",
        "NFT_FIB_IPV4",
    ],
    config_v1: &[],
    modules: &[
        "veth",
        "bridge",
        "nf_nat",
        "nf_conntrack",
        "nft_chain_nat",
        "nft_masq",
        "nft_nat",
        "nft_fib_ipv4",
    ],
    since: None,
};

/// The network the probes build, in their own throwaway namespace.
pub const NETWORK: &str = "probe";
const SUBNET: &str = "10.250.0.0/24";

/// Moves this probe process into a network namespace of its own, so that
/// the bridge, the veths and the NAT table it creates vanish with it, and
/// creates the probe network there. Returns the gateway.
pub fn private_network(lab: &Lab) -> Result<Ipv4Addr, LabError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    runtime::network::link::set_up("lo").map_err(|e| LabError::Broken(e.to_string()))?;
    let network = runtime::network::Networks::new(lab.store().root())
        .create(&lab.store(), NETWORK, SUBNET, None)
        .map_err(|e| match e {
            // The kernel or the machine lacks a piece (no nft, no bridge driver).
            runtime::Error::Privilege(why) => LabError::Unsupported(why),
            e => LabError::Broken(format!("create the probe network: {e}")),
        })?;
    Ok(network.gateway)
}

/// A spec on the probe network.
pub fn on_network(lab: &Lab, request: &impl Serialize) -> runtime::Spec {
    let mut spec = lab.spec(request);
    spec.network = Some(runtime::network::Request {
        network: NETWORK.into(),
        ip: None,
        publish: Vec::new(),
    });
    spec
}

/// How long a TCP connect or reply may take, on either side: on a loaded or
/// emulated machine the peer may need seconds to be scheduled.
const TCP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one TCP exchange came to, on either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The peer echoed this line.
    Echoed(String),
    /// The kernel refused the connection or had no route: the path is not there.
    Refused(String),
    /// A wait ran out: the path may be broken, or the machine slow.
    TimedOut(String),
}

impl Reply {
    /// What came back on a connection. Nothing at all means the peer gave
    /// up waiting for our line (our echo servers answer every line they
    /// read): a wait that ran out, on its side.
    fn echoed(line: &str) -> Reply {
        if line.is_empty() {
            Reply::TimedOut("the peer closed without answering".into())
        } else {
            Reply::Echoed(line.to_owned())
        }
    }

    /// A refusal or a missing route is the kernel's answer; a timeout, or a
    /// neighbour that never answered ARP (EHOSTUNREACH), may be a slow machine.
    fn from_error(e: std::io::Error) -> Reply {
        use std::io::ErrorKind::{HostUnreachable, TimedOut, WouldBlock};
        match e.kind() {
            TimedOut | WouldBlock | HostUnreachable => Reply::TimedOut(e.to_string()),
            _ => Reply::Refused(e.to_string()),
        }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Echoed(line) => write!(f, "echoed {line:?}"),
            Reply::Refused(why) => write!(f, "no connection: {why}"),
            Reply::TimedOut(why) => write!(f, "timed out: {why}"),
        }
    }
}

/// Judges exchanges that should each have echoed their own message: broken
/// when any was refused or echoed something else, unclear when the only
/// trouble was a wait that ran out.
pub fn judge_paths(paths: &[(&str, &Reply)]) -> crate::verdict::Property {
    use crate::verdict::Property;
    let broken: Vec<String> = paths
        .iter()
        .filter(|(message, reply)| match reply {
            Reply::Echoed(line) => line != message,
            Reply::Refused(_) => true,
            Reply::TimedOut(_) => false,
        })
        .map(|(message, reply)| format!("{message}: {reply}"))
        .collect();
    let slow: Vec<String> = paths
        .iter()
        .filter(|(_, reply)| matches!(reply, Reply::TimedOut(_)))
        .map(|(message, reply)| format!("{message}: {reply}"))
        .collect();
    if !broken.is_empty() {
        Property::Broken(format!(
            "the exchange did not go through: {}",
            broken.join("; ")
        ))
    } else if !slow.is_empty() {
        Property::Unclear(format!(
            "a wait of {TCP_WAIT:?} ran out, which a slow machine can cause: {}",
            slow.join("; ")
        ))
    } else {
        Property::Held
    }
}

/// Sends one line to `address` and returns the reply, or why none came:
/// the probe calls this on the host side, and the helper inside.
pub fn exchange(address: SocketAddr, message: &str) -> Reply {
    let mut stream = match std::net::TcpStream::connect_timeout(&address, TCP_WAIT) {
        Ok(stream) => stream,
        Err(e) => return Reply::from_error(e),
    };
    let _ = stream.set_read_timeout(Some(TCP_WAIT));
    let _ = writeln!(stream, "{message}");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    match stream.read_to_string(&mut reply) {
        Ok(_) => Reply::echoed(reply.trim()),
        Err(e) => Reply::from_error(e),
    }
}

/// The helper's report that its echo server is up.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listening(pub u16);

/// The helper's report of one line echoed, and for whom.
#[derive(Debug, Serialize, Deserialize)]
pub struct EchoedFor(pub IpAddr);

/// Inside: echoes one line back on each of `count` TCP connections to
/// `port`, on every address of the container.
pub fn serve_echo(helper: &mut Helper, port: u16, count: u32) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| anyhow::anyhow!("listen on port {port}: {e}"))?;
    helper.say(&Listening(port))?;
    for _ in 0..count {
        let Ok((stream, peer)) = listener.accept() else {
            break;
        };
        let mut line = String::new();
        let _ = std::io::BufReader::new(&stream).read_line(&mut line);
        let _ = (&stream).write_all(line.as_bytes());
        helper.say(&EchoedFor(peer.ip()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Property;

    #[test]
    fn only_a_refusal_or_a_wrong_echo_is_broken() {
        let ok = Reply::Echoed("a".into());
        let slow = Reply::TimedOut("read".into());
        let refused = Reply::Refused("Network is unreachable".into());
        assert_eq!(judge_paths(&[("a", &ok)]), Property::Held);
        assert!(matches!(
            judge_paths(&[("a", &ok), ("b", &slow)]),
            Property::Unclear(_)
        ));
        assert!(matches!(
            judge_paths(&[("b", &slow), ("c", &refused)]),
            Property::Broken(_)
        ));
        assert!(matches!(judge_paths(&[("b", &ok)]), Property::Broken(_)));
        assert_eq!(Reply::echoed("x"), Reply::Echoed("x".into()));
        assert!(matches!(Reply::echoed(""), Reply::TimedOut(_)));
    }
}
