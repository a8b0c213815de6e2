//! # `net.veth`: a veth pair carries traffic between a container and its bridge
//!
//! **The feature.** A veth pair is two network devices joined back to back:
//! a frame sent into one comes out of the other. The runtime creates a pair,
//! attaches one end to the network's bridge (a software switch on the
//! host), and moves the other into the container's network namespace, where
//! it is renamed `eth0`, given an address and a default route via the
//! bridge's address, the gateway. Every container on the bridge can then
//! reach the host and the others. (The network itself also brings NAT rules
//! on the host; `net.port_map` is about those.)
//!
//! **How the probe looks.** In a throwaway network namespace of its own,
//! the probe creates a network and starts an echo server on it; it reads the
//! server's address from the kernel (`/proc/<pid>/net/fib_trie`), not from
//! the runtime. It then proves three paths with TCP: a second container →
//! the server, the probe (the host side) → the server, and a container → a
//! listener the probe holds on the gateway address.
//!
//! **The control.** A container on no network tries the same server: a new
//! network namespace has no route to it.
//!
//! **Waiting on a slow machine.** Each connect and each reply may take up
//! to 10 s. A refusal or a missing route is the kernel's own answer and
//! fails the probe; a wait that runs out could be a slow machine as well as
//! a lost packet, so it makes the probe inconclusive (and it is run again).
//!
//! **Verdict.** Pass when all three exchanges echo, byte for byte, and the
//! kernel refused the control.

use std::net::{IpAddr, SocketAddr, TcpListener};

use crate::kernel;
use crate::netlab::{self, exchange, judge_paths, on_network, private_network, Listening, Reply};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "net.veth",
    property: "a veth pair carries traffic between containers, the host and the gateway",
    needs: netlab::NEEDS,
    mutations: &[Mutation::Fault(Fault::SkipNetworkAttach)],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

const PORT: u16 = 7000;
const GATEWAY_PORT: u16 = 7100;

/// What the probe asks of a container: to serve, or to send one line.
#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Echo one line back on each of this many connections to [`PORT`].
    Serve { connections: u32 },
    /// Send `message` to `to` and report the [`Reply`].
    Send { to: SocketAddr, message: String },
}

fn send(to: SocketAddr, message: &str) -> Request {
    Request::Send {
        to,
        message: message.to_owned(),
    }
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let gateway = private_network(lab)?;
    let mut server = lab.start(
        on_network(lab, &Request::Serve { connections: 2 }),
        Role::Isolated,
    )?;
    let Listening(_) = server.receive()?;
    let seen = kernel::local_addresses(server.pid().as_raw());
    let address = seen
        .first()
        .copied()
        .or(server.reserved_address())
        .or_broken("the server has no address, and none was reserved")?;
    let target = SocketAddr::new(address.into(), PORT);

    // Control first, while the server still listens: no network, no route.
    let control_reply: Reply = lab.report(lab.spec(&send(target, "no-network")), Role::Control)?;
    let c2c: Reply = lab.report(
        on_network(lab, &send(target, "container-to-container")),
        Role::Isolated,
    )?;
    let h2c = exchange(target, "host-to-container");
    // Killed rather than awaited: without a working network it would wait
    // for connections forever.
    drop(server);

    // The container → gateway path: a listener on the bridge's address,
    // serving one connection while the client container starts and sends.
    let listener = TcpListener::bind((gateway, GATEWAY_PORT))?;
    listener.set_nonblocking(true)?;
    let to_gateway = SocketAddr::new(IpAddr::V4(gateway), GATEWAY_PORT);
    let mut client = lab.start(
        on_network(lab, &send(to_gateway, "container-to-gateway")),
        Role::Isolated,
    )?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let received = {
        let stop = stop.clone();
        std::thread::spawn(move || echo_one(&listener, &stop))
    };
    let c2g = client.receive::<Reply>();
    // The client has its answer (or never will): the listener may stop.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let received = received
        .join()
        .unwrap_or_else(|_| "(the listener panicked)".into());
    let c2g = c2g?;
    client.finish()?;

    let property = if seen.is_empty() {
        Property::Broken("the kernel shows no address in the server's namespace".into())
    } else {
        judge_paths(&[
            ("container-to-container", &c2c),
            ("host-to-container", &h2c),
            ("container-to-gateway", &c2g),
        ])
    };
    Ok(Judgement {
        evidence: evidence![
            "server addresses in the kernel" => format!("{seen:?}"),
            "container → container" => &c2c,
            "host → container" => &h2c,
            "container → gateway" => &c2g,
            "received by the probe on the gateway" => &received,
        ],
        control: evidence!["container on no network → server" => &control_reply],
        // The kernel must have refused the control outright: a helper that
        // timed out or never reported does not show that the network was needed.
        control_separated: matches!(control_reply, Reply::Refused(_)),
        property,
    }
    .finding())
}

/// Accepts one connection (until `stop`, when the client has reported),
/// echoes its line, and returns it.
fn echo_one(listener: &TcpListener, stop: &std::sync::atomic::AtomicBool) -> String {
    use std::io::{BufRead, Write};
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut line = String::new();
            let _ = std::io::BufReader::new(&stream).read_line(&mut line);
            let _ = (&stream).write_all(line.as_bytes());
            return line.trim().to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    "(nothing arrived)".into()
}

/// Inside: serves echoes, or sends one line and reports what came back.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    match helper.ask()? {
        Request::Serve { connections } => netlab::serve_echo(helper, PORT, connections),
        Request::Send { to, message } => helper.say(&exchange(to, &message)),
    }
}
