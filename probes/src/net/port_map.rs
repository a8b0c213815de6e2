//! # `net.port_map`: a published port reaches the container from the host
//!
//! **The feature.** Publishing `HOSTPORT:CONTAINERPORT` is destination NAT:
//! nftables rewrites the destination of packets for the host's port to the
//! container's address and port, in the `prerouting` hook for packets that
//! arrive from elsewhere and in the `output` hook for those the host sends
//! itself. Reaching `127.0.0.1:HOSTPORT` from the host needs two more
//! things: the bridge must accept loopback-sourced packets
//! (`route_localnet`), and those packets must leave with the bridge's
//! address as their source (MASQUERADE), or the container's reply would go
//! to its own loopback.
//!
//! **How the probe looks.** In a throwaway network namespace, the probe
//! starts an echo server publishing a host port, and talks to it at
//! `127.0.0.1:HOSTPORT`.
//!
//! **The control.** The same server, unpublished: nothing answers there.
//!
//! **Verdict.** Pass when the exchange through the published port echoes
//! and the kernel refused the unpublished one. A refused or misdirected
//! exchange fails; one whose 10 s wait ran out is inconclusive, since a
//! slow machine can cause that too.

use std::net::SocketAddr;

use runtime::network::nat::{Protocol, Publish};

use crate::netlab::{self, exchange, judge_paths, on_network, private_network, Listening, Reply};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "net.port_map",
    property: "a published port reaches the container from the host at 127.0.0.1",
    needs: netlab::NEEDS,
    mutations: &[Mutation::SkipPublish],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

const HOST_PORT: u16 = 18181;
const PORT: u16 = 7000;

fn run(lab: &Lab) -> Result<Finding, LabError> {
    private_network(lab)?;
    let through = |publish: bool, role: Role| -> Result<Reply, LabError> {
        let mut spec = on_network(lab, &());
        if publish {
            let entry = Publish {
                host_ip: None,
                host_port: HOST_PORT,
                container_port: PORT,
                protocol: Protocol::Tcp,
            };
            spec.network
                .as_mut()
                .expect("on a network")
                .publish
                .push(entry);
        }
        let mut server = lab.start(spec, role)?;
        let Listening(_) = server.receive()?;
        let reply = exchange(
            SocketAddr::from(([127, 0, 0, 1], HOST_PORT)),
            "via-published-port",
        );
        drop(server);
        Ok(reply)
    };
    let published = through(true, Role::Isolated)?;
    let unpublished = through(false, Role::Control)?;
    Ok(Judgement {
        evidence: evidence![format!("127.0.0.1:{HOST_PORT} → container:{PORT}") => &published],
        control: evidence![format!("127.0.0.1:{HOST_PORT}, unpublished") => &unpublished],
        // Unpublished, nothing listens on the host port: the kernel refuses.
        control_separated: matches!(unpublished, Reply::Refused(_)),
        property: judge_paths(&[("via-published-port", &published)]),
    }
    .finding())
}

/// Inside: an echo server on [`PORT`] for one connection.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    netlab::serve_echo(helper, PORT, 1)
}
