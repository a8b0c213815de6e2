//! Network probes: the empty namespace, veth pairs on a bridge, and
//! published ports.

pub mod net_isolated;
pub mod net_port_map;
pub mod net_veth;

use std::net::Ipv4Addr;

use crate::lab::{Lab, LabError};

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
pub fn on_network(lab: &Lab, args: &[&str]) -> runtime::Spec {
    let mut spec = lab.spec(args);
    spec.network = Some(runtime::network::Request {
        network: NETWORK.into(),
        ip: None,
        publish: Vec::new(),
    });
    spec
}

/// How long the probe's own TCP connect or reply may take (the helper waits
/// as long): on a loaded or emulated machine the peer may need seconds.
const TCP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one TCP exchange came to, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The peer echoed this line.
    Echoed(String),
    /// The kernel refused the connection or had no route: the path is not there.
    Refused(String),
    /// A wait ran out: the path may be broken, or the machine slow.
    TimedOut(String),
}

impl Reply {
    /// Reads the helper's `reply=` report (see its `tcp_send`).
    pub fn from_report(text: &str) -> Reply {
        if let Some(why) = text.strip_prefix("(no connection: ") {
            Reply::Refused(why.trim_end_matches(')').to_owned())
        } else if let Some(why) = text.strip_prefix("(timed out: ") {
            Reply::TimedOut(why.trim_end_matches(')').to_owned())
        } else {
            Reply::echoed(text)
        }
    }

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

/// Sends one line from the probe's side and returns the reply, or why none came.
pub fn exchange(address: std::net::SocketAddr, message: &str) -> Reply {
    use std::io::{Read, Write};
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
        assert_eq!(
            Reply::from_report("(timed out: connection timed out)"),
            Reply::TimedOut("connection timed out".into())
        );
        assert_eq!(Reply::from_report("x"), Reply::Echoed("x".into()));
        assert!(matches!(Reply::from_report(""), Reply::TimedOut(_)));
    }
}
