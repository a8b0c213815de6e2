//! Networking end to end, each test inside a throwaway network namespace of
//! its own (entered by the test's thread, inherited by every mydocker it
//! starts), so the machine's real interfaces and ruleset are never touched.
//! Traffic goes only to loopback and to namespaces the test created. Every
//! test ends by checking that no veth, bridge, nft table or lease is left.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use common::{private_network, rootfs, Harness};

/// Asserts that nothing of mydocker's is left in this namespace.
fn assert_no_network_leftovers(h: &Harness) {
    let links = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ours: Vec<&str> = links
        .lines()
        .filter(|l| l.contains("mdbr") || l.contains("veth") || l.contains(" vp"))
        .collect();
    assert!(ours.is_empty(), "links left behind:\n{}", ours.join("\n"));
    let tables = String::from_utf8(
        Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        !tables.contains("mydocker"),
        "nft table left behind: {tables}"
    );
    let networks = h.state_root.path().join("networks");
    let left: Vec<_> = std::fs::read_dir(&networks)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "network state left behind: {left:?}");
}

fn r() -> &'static str {
    rootfs().to_str().unwrap()
}

fn network(h: &Harness, name: &str, subnet: &str) {
    h.cli(&["network", "create", "--subnet", subnet, name])
        .expect_code(0);
}

/// Waits until something in `container`'s network namespace listens on TCP
/// `port`, by the kernel's socket tables (`/proc/<pid>/net/tcp` and `tcp6`,
/// where a listener's state is `0A`). A fixed sleep would guess how long a start
/// takes, and on a busy machine guess wrong.
fn wait_listening(h: &Harness, container: &str, port: u16) {
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", container]).stdout()).unwrap();
    let pid = record["pid"].as_i64().unwrap();
    let wanted = format!(":{port:04X}");
    for _ in 0..600 {
        // busybox nc listens on [::] where IPv6 is built in: tcp6 then.
        let table: String = ["tcp", "tcp6"]
            .iter()
            .map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).unwrap_or_default())
            .collect();
        let listening = table.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1).is_some_and(|local| local.ends_with(&wanted))
                && fields.get(3) == Some(&"0A")
        });
        if listening {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing in {container} listened on port {port} within 30 s");
}

fn record_id(h: &Harness, container: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", container]).stdout()).unwrap();
    record["id"].as_str().unwrap().to_owned()
}

fn address_of(h: &Harness, container: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", container]).stdout()).unwrap();
    record["endpoint"]["address"].as_str().unwrap().to_owned()
}

#[test]
fn a_container_reaches_its_gateway_and_is_configured() {
    private_network();
    let h = Harness::new();
    network(&h, "front", "10.81.0.0/24");
    let listener = TcpListener::bind("10.81.0.1:9100").unwrap();
    let script = "ip -4 -o addr show eth0; ip route; grep -c 10.81.0.2 /etc/hosts; echo ping | nc -w 3 10.81.0.1 9100";
    let child = std::thread::spawn({
        let cg = h.cgroup_parent.clone();
        let root = h.state_root.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_mydocker"))
                .arg("--root")
                .arg(root)
                .args([
                    "run",
                    "--rm",
                    "--cgroup-parent",
                    &cg,
                    "--network",
                    "front",
                    r(),
                    "sh",
                    "-c",
                    script,
                ])
                .output()
                .unwrap()
        }
    });
    let (mut stream, peer) = listener.accept().unwrap();
    let mut received = String::new();
    stream.read_to_string(&mut received).unwrap();
    // busybox nc waits for us to close before it exits.
    drop(stream);
    assert_eq!(received, "ping\n");
    assert_eq!(
        peer.ip().to_string(),
        "10.81.0.2",
        "the container's own address, unmasqueraded on its bridge"
    );
    let output = child.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("eth0    inet 10.81.0.2/24"), "{stdout}");
    assert!(
        stdout.contains("default via 10.81.0.1 dev eth0"),
        "{stdout}"
    );
    h.cli(&["network", "rm", "front"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn containers_talk_on_one_bridge_but_not_across_networks() {
    private_network();
    let h = Harness::new();
    network(&h, "blue", "10.82.0.0/24");
    network(&h, "red", "10.83.0.0/24");
    h.run_kept(&[
        "-d",
        "--name",
        "server",
        "--network",
        "blue",
        r(),
        "sh",
        "-c",
        "nc -l -p 7000",
    ])
    .expect_code(0);
    let server = address_of(&h, "server");
    // Listening first: otherwise the refusal across networks proves nothing.
    wait_listening(&h, "server", 7000);
    // On another network: routed through the host, but dropped between bridges.
    let across = h.run_kept(&[
        "--rm",
        "--network",
        "red",
        r(),
        "sh",
        "-c",
        &format!("echo hi | nc -w 2 {server} 7000"),
    ]);
    assert_ne!(
        across.code(),
        0,
        "a container on another network reached {server}"
    );
    // On the same bridge: delivered.
    h.run_kept(&[
        "--rm",
        "--network",
        "blue",
        r(),
        "sh",
        "-c",
        &format!("echo hello-neighbour | nc -w 2 {server} 7000"),
    ])
    .expect_code(0);
    // The sender is done once its bytes are sent; the server prints them
    // when it gets to read them, which on a busy machine can come later.
    // What it printed is kept, so that a timeout says what was there.
    let mut printed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while printed != "hello-neighbour\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the server printed {printed:?} in 20 s; ps -a:\n{}",
            h.cli(&["ps", "-a"]).stdout()
        );
        std::thread::sleep(Duration::from_millis(50));
        printed = h.cli(&["logs", "server"]).stdout();
    }
    h.cli(&["stop", "-t", "5", "server"]).expect_code(0);
    h.cli(&["rm", "server"]).expect_code(0);
    h.cli(&["network", "rm", "blue"]).expect_code(0);
    h.cli(&["network", "rm", "red"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn a_published_port_is_one_containers_and_rm_releases_it() {
    // That a published port reaches the container is the probes'
    // (net.port_map); here, the refusal of a second claim and the cleanup.
    private_network();
    let h = Harness::new();
    network(&h, "web", "10.84.0.0/24");
    h.run_kept(&[
        "-d",
        "--name",
        "site",
        "--network",
        "web",
        "-p",
        "18080:80",
        r(),
        "sh",
        "-c",
        "while :; do echo served | nc -l -p 80; done",
    ])
    .expect_code(0);
    // `port` as docker prints it, whole and for one port.
    assert_eq!(
        h.cli(&["port", "site"]).stdout(),
        "80/tcp -> 0.0.0.0:18080\n"
    );
    assert_eq!(h.cli(&["port", "site", "80"]).stdout(), "0.0.0.0:18080\n");
    assert_eq!(
        h.cli(&["port", "site", "80/tcp"]).stdout(),
        "0.0.0.0:18080\n"
    );
    h.refused(&["port", "site", "80/udp"], "80/udp");
    h.refused(&["port", "site", "eighty"], "eighty");
    // A second container cannot take the same host port.
    let clash = h.run_kept(&["--rm", "--network", "web", "-p", "18080:81", r(), "true"]);
    clash.expect_code(125);
    assert!(
        clash.stderr().contains("already publishes"),
        "{}",
        clash.stderr()
    );
    h.cli(&["rm", "-f", "site"]).expect_code(0);
    assert!(
        TcpStream::connect("127.0.0.1:18080").is_err(),
        "the port stayed published after rm"
    );
    // Released: another container may publish it now.
    h.run_kept(&["--rm", "--network", "web", "-p", "18080:81", r(), "true"])
        .expect_code(0);
    h.cli(&["network", "rm", "web"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn a_restarted_container_keeps_its_address_and_its_published_port() {
    private_network();
    let h = Harness::new();
    network(&h, "back", "10.86.0.0/24");
    let serve = "while :; do echo served | nc -l -p 80; done";
    h.run_kept(&[
        "-d",
        "--name",
        "api",
        "--network",
        "back",
        "-p",
        "18086:80",
        r(),
        "sh",
        "-c",
        serve,
    ])
    .expect_code(0);
    let address = address_of(&h, "api");
    h.cli(&["restart", "-t", "0", "api"]).expect_code(0);
    assert_eq!(address_of(&h, "api"), address);
    // One lease, the same, and the port mapped to the new run.
    let leases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(h.state_root.path().join("networks/back/leases.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        leases["leased"],
        serde_json::json!({ address.as_str(): record_id(&h, "api") })
    );
    wait_listening(&h, "api", 80);
    assert_eq!(
        h.cli(&["port", "api"]).stdout(),
        "80/tcp -> 0.0.0.0:18086\n"
    );
    // While it is stopped its port is free; taken meanwhile, the restart
    // is refused and the container stays as it was, with its address.
    h.cli(&["stop", "-t", "0", "api"]).expect_code(0);
    h.run_kept(&[
        "-d",
        "--name",
        "squatter",
        "--network",
        "back",
        "-p",
        "18086:81",
        r(),
        "sleep",
        "60",
    ])
    .expect_code(0);
    let refused = h.cli(&["restart", "api"]);
    refused.expect_code(125);
    assert!(refused.stderr().contains("18086"), "{}", refused.stderr());
    assert_eq!(address_of(&h, "api"), address);
    assert_eq!(
        h.cli(&["inspect", "-f", "{{.State.Status}}", "api"])
            .stdout(),
        "exited\n"
    );
    h.cli(&["rm", "-f", "squatter"]).expect_code(0);
    // The container's root makes its /etc/hosts a link to a host file, and
    // /etc/hostname a directory. Started again as root, mydocker writes
    // the new files in place of those, never through them.
    let precious = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(precious.path(), "precious\n").unwrap();
    h.cli(&["restart", "api"]).expect_code(0);
    let link = format!("ln -sf {} /etc/hosts", precious.path().display());
    h.cli(&["exec", "api", "sh", "-c", &link]).expect_code(0);
    h.cli(&["restart", "-t", "0", "api"]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(precious.path()).unwrap(),
        "precious\n"
    );
    let hosts = h.cli(&["exec", "api", "cat", "/etc/hosts"]);
    assert!(
        hosts.expect_code(0).stdout().contains(&address),
        "{}",
        hosts.stdout()
    );
    h.cli(&[
        "exec",
        "api",
        "sh",
        "-c",
        "rm /etc/hostname && mkdir /etc/hostname",
    ])
    .expect_code(0);
    let refused = h.cli(&["restart", "-t", "0", "api"]);
    refused.expect_code(125);
    assert!(
        refused.stderr().contains("/etc/hostname"),
        "{}",
        refused.stderr()
    );
    h.cli(&["rm", "-f", "api"]).expect_code(0);
    h.cli(&["network", "rm", "back"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn an_outside_host_is_reached_through_masquerade() {
    private_network();
    let h = Harness::new();
    // The "outside": one more namespace, joined to ours by a veth pair.
    let mut outside = Command::new("unshare")
        .args(["--net", "sleep", "3600"])
        .spawn()
        .unwrap();
    let pid = outside.id().to_string();
    // The veth's far end must land in unshare's new namespace, not in ours
    // before unshare has made it.
    // This thread's namespace: private_network() unshared this test thread
    // alone, and /proc/self names the process's first thread.
    let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let made = (0..600).any(
        |_| match std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            Ok(theirs) if theirs != ours => true,
            _ => {
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        },
    );
    assert!(made, "unshare made no network namespace within 30 s");
    let ip = |args: &[&str]| {
        assert!(
            Command::new("ip").args(args).status().unwrap().success(),
            "ip {args:?}"
        )
    };
    ip(&[
        "link", "add", "out0", "type", "veth", "peer", "name", "out1", "netns", &pid,
    ]);
    ip(&["addr", "add", "192.0.2.1/24", "dev", "out0"]);
    ip(&["link", "set", "out0", "up"]);
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        for args in [
            &["addr", "add", "192.0.2.2/24", "dev", "out1"][..],
            &["link", "set", "out1", "up"],
            &["link", "set", "lo", "up"],
        ] {
            assert!(Command::new("ip").args(args).status().unwrap().success());
        }
        let listener = TcpListener::bind("192.0.2.2:9200").unwrap();
        tx.send(()).unwrap();
        let (mut stream, peer): (TcpStream, SocketAddr) = listener.accept().unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        (text, peer)
    });
    rx.recv().unwrap();
    network(&h, "egress", "10.85.0.0/24");
    h.run_kept(&[
        "--rm",
        "--network",
        "egress",
        r(),
        "sh",
        "-c",
        "echo out-there | nc -w 3 192.0.2.2 9200",
    ])
    .expect_code(0);
    let (text, peer) = listener.join().unwrap();
    assert_eq!(text, "out-there\n");
    // The outside host saw our address on its link, not the container's.
    assert_eq!(peer.ip(), std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    h.cli(&["network", "rm", "egress"]).expect_code(0);
    let _ = outside.kill();
    let _ = outside.wait();
    // The pair usually died with the outside namespace already.
    let _ = Command::new("ip").args(["link", "del", "out0"]).status();
    assert_no_network_leftovers(&h);
}

#[test]
fn twenty_concurrent_runs_get_twenty_addresses() {
    private_network();
    let h = Harness::new();
    network(&h, "crowd", "10.86.0.0/24");
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_mydocker"))
                .arg("--root")
                .arg(h.state_root.path())
                .args([
                    "run",
                    "--rm",
                    "--cgroup-parent",
                    &h.cgroup_parent,
                    "--network",
                    "crowd",
                    r(),
                    "sh",
                    "-c",
                ])
                // Each holds its address for a while, so that all twenty hold theirs
                // at once: an address released on exit may rightly be given again.
                .arg("ip -4 -o addr show eth0 | awk '{print $4}'; sleep 3")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addresses: Vec<String> = children
        .into_iter()
        .map(|c| {
            String::from_utf8(c.wait_with_output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    assert!(
        addresses
            .iter()
            .all(|a| a.starts_with("10.86.0.") && a.ends_with("/24")),
        "{addresses:?}"
    );
    let leases: serde_json::Value =
        serde_json::from_str(&h.cli(&["network", "inspect", "crowd"]).stdout()).unwrap();
    assert_eq!(
        leases["leases"].as_object().unwrap().len(),
        0,
        "--rm released every address"
    );
    h.cli(&["network", "rm", "crowd"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn bad_network_input_is_refused_and_changes_nothing() {
    private_network();
    let h = Harness::new();
    let refused = |args: &[&str], mention: &str| h.refused(args, mention);
    let cg = h.cgroup_parent.clone();
    refused(
        &["network", "create", "--subnet", "10.0.0.300/24", "n"],
        "\"10.0.0.300/24\"",
    );
    refused(
        &["network", "create", "--subnet", "10.0.0.0/31", "n"],
        "/8 to /30",
    );
    refused(
        &[
            "network",
            "create",
            "--subnet",
            "10.87.0.0/24",
            "--gateway",
            "10.88.0.1",
            "n",
        ],
        "\"10.88.0.1\"",
    );
    network(&h, "tiny", "10.87.0.0/30");
    refused(
        &["network", "create", "--subnet", "10.87.0.0/16", "other"],
        "overlaps network tiny",
    );
    refused(
        &["network", "create", "--subnet", "10.89.0.0/24", "tiny"],
        "\"tiny\"",
    );
    refused(
        &["network", "create", "--subnet", "10.90.0.0/24", "host"],
        "\"host\"",
    );
    refused(
        &["network", "create", "--subnet", "10.90.0.0/24", "a b"],
        "\"a b\"",
    );
    refused(
        &[
            "network",
            "create",
            "--subnet",
            "10.90.0.0/24",
            "--gateway",
            "gw",
            "n",
        ],
        "\"gw\"",
    );
    refused(
        &[
            "network",
            "create",
            "--driver",
            "macvlan",
            "--subnet",
            "10.90.0.0/24",
            "n",
        ],
        "\"macvlan\"",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "-p",
            "80:80",
            "-p",
            "80:81",
            r(),
            "true",
        ],
        "given twice",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "nowhere",
            r(),
            "true",
        ],
        "\"nowhere\"",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "-p",
            "0:80",
            r(),
            "true",
        ],
        "\"0:80\"",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "-p",
            "80:65536",
            r(),
            "true",
        ],
        "\"80:65536\"",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "-p",
            "80:80/sctp",
            r(),
            "true",
        ],
        "unknown protocol",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "--ip",
            "10.99.0.5",
            r(),
            "true",
        ],
        "\"10.99.0.5\"",
    );
    h.run_kept(&[
        "-d",
        "--name",
        "only",
        "--network",
        "tiny",
        r(),
        "sleep",
        "30",
    ])
    .expect_code(0);
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            "--ip",
            "10.87.0.2",
            r(),
            "true",
        ],
        "taken",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "--network",
            "tiny",
            r(),
            "true",
        ],
        "exhausted",
    );
    refused(&["network", "rm", "tiny"], "only");
    h.cli(&["rm", "-f", "only"]).expect_code(0);
    h.cli(&["network", "rm", "tiny"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn a_killed_monitor_leaves_no_link_rule_or_lease_after_the_next_command() {
    private_network();
    let h = Harness::new();
    network(&h, "web", "10.85.0.0/24");
    h.run_kept(&[
        "-d",
        "--rm",
        "--name",
        "site",
        "--network",
        "web",
        "-p",
        "18081:80",
        r(),
        "sleep",
        "30",
    ])
    .expect_code(0);
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", "site"]).stdout()).unwrap();
    let (init, monitor) = (
        record["pid"].as_i64().unwrap(),
        record["monitor_pid"].as_i64().unwrap(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::eventually("the container to die with its monitor", || {
        std::fs::read_to_string(format!("/proc/{init}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    // The control: its address lease and its port's NAT rule outlived it
    // (its veth went with its network namespace).
    let leases = h.state_root.path().join("networks/web/leases.json");
    let leased = || {
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&leases).unwrap()).unwrap();
        !file["leased"].as_object().unwrap().is_empty()
    };
    let ruleset = || {
        let out = Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(leased() && ruleset().contains("18081"), "{}", ruleset());
    // The next command (ps) finishes the teardown: lease and rule go, and
    // with --rm the record too.
    assert!(!h.cli(&["ps", "-a"]).stdout().contains("site"));
    assert!(!leased(), "{}", std::fs::read_to_string(&leases).unwrap());
    assert!(!ruleset().contains("18081"), "{}", ruleset());
    h.run_kept(&["--rm", "--network", "web", "-p", "18081:81", r(), "true"])
        .expect_code(0);
    h.cli(&["network", "rm", "web"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

/// The links of this namespace whose `ip -o link` line mentions `needle`.
fn links_with(needle: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_damaged_network_file_names_itself_and_no_other_network_is_affected() {
    private_network();
    let h = Harness::new();
    network(&h, "good", "10.87.0.0/24");
    network(&h, "bad", "10.88.0.0/24");
    for (name, net) in [("g", "good"), ("b", "bad")] {
        h.run_kept(&["-d", "--name", name, "--network", net, r(), "sleep", "3600"])
            .expect_code(0);
    }
    let good_address = address_of(&h, "g");
    // The control: the network takes a container before its file is damaged.
    h.run_kept(&["--rm", "--network", "bad", r(), "true"])
        .expect_code(0);
    let leases = h.state_root.path().join("networks/bad/leases.json");
    let text = std::fs::read_to_string(&leases).unwrap();
    std::fs::write(&leases, &text[..text.len() / 2]).unwrap();

    let refused = h.run_kept(&["--rm", "--network", "bad", r(), "true"]);
    refused.expect_code(125);
    let line = refused.stderr();
    assert!(
        line.contains(&format!("{} is damaged", leases.display()))
            && line.contains("`mydocker network rm bad`")
            && line.lines().count() == 1,
        "{line}"
    );
    // Another network, ps and rm -f work; rm -f warns about the lease file.
    h.run_kept(&["--rm", "--network", "good", r(), "true"])
        .expect_code(0);
    let ps = h.cli(&["ps", "-a"]).stdout();
    assert!(ps.contains(" g\n") || ps.contains(" g "), "{ps}");
    let removed = h.cli(&["rm", "-f", "b"]);
    removed.expect_code(0);
    assert!(
        removed.stderr().contains("leases.json is damaged"),
        "{}",
        removed.stderr()
    );
    h.cli(&["network", "rm", "bad"]).expect_code(0);

    // A damaged network record: ls warns and lists the rest, a run is
    // refused naming it, and rm still finds its bridge (by its alias).
    network(&h, "lost", "10.89.0.0/24");
    assert_eq!(links_with("mydocker network lost").len(), 1, "the control");
    let record = h.state_root.path().join("networks/lost/network.json");
    std::fs::write(&record, "{").unwrap();
    let ls = h.cli(&["network", "ls"]);
    ls.expect_code(0);
    assert!(ls.stdout().contains("good") && !ls.stdout().contains("lost"));
    assert!(
        ls.stderr()
            .contains(&format!("{} is damaged", record.display())),
        "{}",
        ls.stderr()
    );
    let refused = h.run_kept(&["--rm", "--network", "lost", r(), "true"]);
    refused.expect_code(125);
    assert!(
        refused.stderr().contains("network.json is damaged"),
        "{}",
        refused.stderr()
    );
    // Made again before it is removed: refused, and the damaged one kept.
    h.refused(
        &["network", "create", "--subnet", "10.90.0.0/24", "lost"],
        "network.json is damaged",
    );
    assert!(record.exists() && links_with("mydocker network lost").len() == 1);
    h.cli(&["network", "rm", "lost"]).expect_code(0);
    assert!(links_with("mydocker network lost").is_empty());

    // The other network's container kept its address and its lease.
    assert_eq!(address_of(&h, "g"), good_address);
    let inspect: serde_json::Value =
        serde_json::from_str(&h.cli(&["network", "inspect", "good"]).stdout()).unwrap();
    assert_eq!(inspect["leases"].as_object().unwrap().len(), 1);
    h.cli(&["rm", "-f", "g"]).expect_code(0);
    h.cli(&["network", "rm", "good"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

#[test]
fn a_network_create_or_remove_killed_half_way_is_finished_by_the_next_command() {
    private_network();
    let h = Harness::new();
    let networks = h.state_root.path().join("networks");
    // A killed create leaves its staging directory, its record naming a
    // bridge that may exist; a killed remove leaves the renamed directory.
    // Each state is made exactly as the kill leaves it.
    network(&h, "staged", "10.90.0.0/24");
    network(&h, "doomed", "10.91.0.0/24");
    for (name, left_as) in [("staged", ".new-staged"), ("doomed", ".removing-doomed")] {
        std::fs::rename(networks.join(name), networks.join(left_as)).unwrap();
    }
    assert_eq!(
        links_with("mdbr").len(),
        2,
        "the control: both bridges exist"
    );
    let ls = h.cli(&["network", "ls"]);
    ls.expect_code(0);
    assert!(!ls.stdout().contains("staged") && !ls.stdout().contains("doomed"));
    assert!(links_with("mdbr").is_empty(), "{:?}", links_with("mdbr"));
    assert!(!networks.join(".new-staged").exists() && !networks.join(".removing-doomed").exists());
    // The names are free again.
    network(&h, "staged", "10.90.0.0/24");
    h.cli(&["network", "rm", "staged"]).expect_code(0);
    h.refused(
        &["network", "create", "--subnet", "10.92.0.0/24", ".new-x"],
        ".new-x",
    );
    assert_no_network_leftovers(&h);
}

#[test]
fn system_prune_removes_only_what_nothing_uses() {
    private_network();
    let h = Harness::new();
    common::imported(&h, "spare");
    common::imported(&h, "busy");
    network(&h, "idle", "10.93.0.0/24");
    network(&h, "held", "10.94.0.0/24");
    h.run_kept(&["--name", "done", "--network", "idle", r(), "true"])
        .expect_code(0);
    h.run_kept(&[
        "-d",
        "--name",
        "live",
        "--network",
        "held",
        "busy",
        "sleep",
        "60",
    ])
    .expect_code(0);
    h.run_kept(&["--name", "broken", r(), "true"])
        .expect_code(0);
    let broken: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", "broken"]).stdout()).unwrap();
    let broken_id = broken["id"].as_str().unwrap().to_owned();
    let done_id = serde_json::from_str::<serde_json::Value>(
        &h.cli(&["inspect", "--record", "done"]).stdout(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = h
        .state_root
        .path()
        .join("containers")
        .join(&broken_id)
        .join("state.json");
    std::fs::write(&record, "{\"id\":").unwrap();

    // Unconfirmed (stdin gives no "y"), it removes nothing.
    let asked = h.cli(&["system", "prune"]);
    asked.expect_code(0);
    assert!(asked
        .stderr()
        .contains("Are you sure you want to continue? [y/N]"));
    assert!(h.cli(&["ps", "-a"]).stdout().contains("done"));

    let pruned = h.cli(&["system", "prune", "-f"]);
    pruned.expect_code(0);
    let out = pruned.stdout();
    assert!(
        out.contains(&format!("Deleted Containers:\n{done_id}\n"))
            && out.contains("Deleted Networks:\nidle\n")
            && !out.contains("held")
            && !out.contains("Deleted Images")
            && out.contains("Total reclaimed space: "),
        "{out}"
    );
    // The damaged record is named and left for rm -f, which still works.
    assert!(
        pruned
            .stderr()
            .contains(&format!("{} is damaged", record.display())),
        "{}",
        pruned.stderr()
    );
    let ps = h.cli(&["ps", "-a"]).stdout();
    assert!(ps.contains("live") && !ps.contains("done"), "{ps}");
    assert!(h.cli(&["network", "ls"]).stdout().contains("held"));

    // While a damaged record may use any image, none goes.
    let kept = h.cli(&["system", "prune", "-a", "-f"]);
    kept.expect_code(0);
    assert!(
        !kept.stdout().contains("Deleted Images"),
        "{}",
        kept.stdout()
    );
    assert!(
        kept.stderr().contains("no image was removed"),
        "{}",
        kept.stderr()
    );
    h.cli(&["rm", "-f", &broken_id]).expect_code(0);

    let with_images = h.cli(&["system", "prune", "-a", "-f"]);
    with_images.expect_code(0);
    let out = with_images.stdout();
    assert!(
        out.contains("Deleted Images:\nspare\n") && !out.contains("busy"),
        "{out}"
    );
    assert!(h.cli(&["images"]).stdout().contains("busy"));

    h.cli(&["rm", "-f", "live"]).expect_code(0);
    let rest = h.cli(&["system", "prune", "-af"]);
    rest.expect_code(0);
    assert!(rest.stdout().contains("Deleted Networks:\nheld\n") && rest.stdout().contains("busy"));
    assert!(!h.cli(&["images"]).stdout().contains("busy"));
    assert_no_network_leftovers(&h);
}

#[test]
fn fifty_operations_at_once_lose_no_lease_and_leave_no_stray_rule() {
    private_network();
    let h = Harness::new();
    network(&h, "busy", "10.95.0.0/24");
    // What the operations act on: ten running containers publishing a
    // port each, and five networks to remove.
    for i in 0..10 {
        let (name, port) = (format!("p{i}"), format!("{}:80", 19100 + i));
        h.run_kept(&[
            "-d",
            "--name",
            &name,
            "--network",
            "busy",
            "-p",
            &port,
            r(),
            "sleep",
            "60",
        ])
        .expect_code(0);
    }
    for i in 0..5 {
        network(&h, &format!("u{i}"), &format!("10.97.{i}.0/24"));
    }
    let operations: Vec<Vec<String>> = (0..50)
        .map(|i: u16| {
            let words: Vec<String> = match i {
                0..=19 => {
                    let mut run = format!("run -d --name r{i} --network busy");
                    if i.is_multiple_of(2) {
                        run.push_str(&format!(" -p {}:80", 19200 + i));
                    }
                    format!("{run} {} sleep 3600", r())
                }
                20..=24 => format!("run --rm --network busy {} true", r()),
                25..=29 => format!("exec p{} true", i - 25),
                30..=32 => format!("stop -t 1 p{}", i - 25),
                33..=34 => format!("rm -f p{}", i - 25),
                35..=44 => format!("network create --subnet 10.96.{i}.0/24 t{i}"),
                _ => format!("network rm u{}", i - 45),
            }
            .split(' ')
            .map(str::to_owned)
            .collect();
            match words[0].as_str() {
                // Runs go under the test's cgroup parent.
                "run" => [
                    &[
                        "run".to_owned(),
                        "--cgroup-parent".into(),
                        h.cgroup_parent.clone(),
                    ],
                    &words[1..],
                ]
                .concat(),
                _ => words,
            }
        })
        .collect();
    let start = std::sync::Barrier::new(operations.len());
    std::thread::scope(|s| {
        for words in &operations {
            let (h, start) = (&h, &start);
            s.spawn(move || {
                let args: Vec<&str> = words.iter().map(String::as_str).collect();
                start.wait();
                let done = h.cli(&args);
                assert_eq!(done.code(), 0, "{args:?}: {}", done.stderr());
            });
        }
    });

    // Every container with an endpoint holds exactly its recorded lease,
    // no address twice, and no lease is held by anything else.
    let ids = h.cli(&["ps", "-aq"]).stdout();
    let records: Vec<serde_json::Value> = ids
        .lines()
        .map(|id| serde_json::from_str(&h.cli(&["inspect", "--record", id]).stdout()).unwrap())
        .collect();
    assert_eq!(records.len(), 10 - 2 + 20, "p0-p7 and r0-r19");
    let mut recorded: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["endpoint"]["address"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    recorded.sort();
    let leases: serde_json::Value =
        serde_json::from_str(&h.cli(&["network", "inspect", "busy"]).stdout()).unwrap();
    let mut leased: Vec<(String, String)> = leases["leases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(address, owner)| (address.clone(), owner.as_str().unwrap().to_owned()))
        .collect();
    leased.sort();
    assert_eq!(leased, recorded);
    let mut addresses: Vec<&String> = recorded.iter().map(|(a, _)| a).collect();
    addresses.dedup();
    assert_eq!(addresses.len(), recorded.len(), "an address given twice");

    // The NAT table forwards exactly the running containers' ports.
    let table = Command::new("nft")
        .args(["list", "table", "ip", "mydocker"])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    let mut forwarded: Vec<u16> = table
        .lines()
        .filter(|l| l.contains("dnat"))
        .filter_map(|l| {
            let after = l.split("dport ").nth(1)?;
            after.split_whitespace().next()?.parse().ok()
        })
        .collect();
    forwarded.sort();
    forwarded.dedup();
    let mut expected: Vec<u16> = (0..5).map(|i| 19100 + i).collect();
    expected.extend((0..20).step_by(2).map(|i| 19200 + i));
    assert_eq!(forwarded, expected, "{table}");

    // Networks: the ten made are there with their bridges, the five removed gone.
    let ls = h.cli(&["network", "ls"]).stdout();
    for i in 35..45 {
        assert!(ls.contains(&format!("t{i} ")), "{ls}");
    }
    assert!(!ls.contains("u0") && !ls.contains("u4"), "{ls}");
    let bridges = Command::new("ip")
        .args(["-o", "link", "show", "type", "bridge"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(bridges.stdout).unwrap().lines().count(),
        11
    );

    for id in ids.lines() {
        h.cli(&["rm", "-f", id]).expect_code(0);
    }
    for i in 35..45 {
        h.cli(&["network", "rm", &format!("t{i}")]).expect_code(0);
    }
    h.cli(&["network", "rm", "busy"]).expect_code(0);
    assert_no_network_leftovers(&h);
}

/// A size as `stats` prints it (`648B`, `3.27kB`), in bytes.
fn decimal_bytes(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        other => panic!("unit {other} in {text}"),
    };
    number.parse::<f64>().unwrap() * scale
}

#[test]
fn stats_counts_the_traffic_of_the_containers_own_interfaces() {
    private_network();
    let h = Harness::new();
    network(&h, "metered", "10.82.0.0/24");
    let listener = TcpListener::bind("10.82.0.1:9101").unwrap();
    let script = "head -c 20000 /dev/zero | nc -w 3 10.82.0.1 9101; sleep 30";
    h.run_kept(&[
        "-d",
        "--name",
        "talker",
        "--network",
        "metered",
        r(),
        "sh",
        "-c",
        script,
    ])
    .expect_code(0);
    let (mut stream, _) = listener.accept().unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    assert_eq!(received.len(), 20000);
    drop(stream);
    let out = h.cli(&["stats", "--no-stream", "talker"]).stdout();
    let row = out.lines().nth(1).unwrap();
    let net = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .nth(5)
        .unwrap()
        .to_owned();
    let (rx, tx) = net.split_once(" / ").unwrap();
    // Sent: the 20000 bytes and their headers; received: at least the acks.
    assert!(decimal_bytes(tx) >= 20000.0, "{out}");
    assert!(decimal_bytes(rx) > 0.0, "{out}");
    h.cli(&["rm", "-f", "talker"]).expect_code(0);
    h.cli(&["network", "rm", "metered"]).expect_code(0);
    assert_no_network_leftovers(&h);
}
