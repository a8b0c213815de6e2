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

/// Sends one line from the probe's side and returns the reply, or why none came.
pub fn exchange(address: std::net::SocketAddr, message: &str) -> String {
    use std::io::{Read, Write};
    match std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(3)) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = writeln!(stream, "{message}");
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            reply.trim().to_owned()
        }
        Err(e) => format!("(no connection: {e})"),
    }
}
