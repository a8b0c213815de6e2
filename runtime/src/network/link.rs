//! Links, addresses and routes over rtnetlink: a bridge per network on the
//! host, and the veth pair that joins a container to it. No `ip` process is
//! ever run. A netlink socket acts in the network namespace of the thread
//! that opened it, so the container's end is set up from a thread that has
//! entered the container's namespace first.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{Error, Result};

/// Runs `work` with a netlink handle on a current-thread runtime: async only
/// on the networking path, and only as long as it takes.
fn with_netlink<T>(
    what: &str,
    work: impl AsyncFnOnce(Handle) -> std::result::Result<T, rtnetlink::Error>,
) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::io("start the netlink runtime"))?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(Error::io("open a netlink socket"))?;
        tokio::spawn(connection);
        work(handle)
            .await
            .map_err(|e| Error::System(format!("{what}: {e}")))
    })
}

async fn index_of(
    handle: &Handle,
    name: &str,
) -> std::result::Result<Option<u32>, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        // The kernel answers an unknown name with ENODEV.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a link of this name exists in our network namespace.
pub fn exists(name: &str) -> Result<bool> {
    with_netlink(&format!("look up link {name}"), async |h| {
        Ok(index_of(&h, name).await?.is_some())
    })
}

/// Creates a bridge holding the gateway address, and brings it up. Its
/// alias (the kernel's `ifalias`, at most 255 bytes) names its owner, so
/// that the bridge can still be found if the file naming it is lost.
pub fn create_bridge(name: &str, alias: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    with_netlink(&format!("create bridge {name}"), async |h| {
        h.link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await?;
        let index = index_of(&h, name).await?.expect("just created");
        // The kernel ignores an alias given with RTM_NEWLINK; it takes one
        // only in a change to an existing link.
        h.link()
            .set(
                LinkUnspec::new_with_index(index)
                    .append_extra_attribute(LinkAttribute::IfAlias(alias.to_owned()))
                    .build(),
            )
            .execute()
            .await?;
        h.address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
    })
}

/// The names of the links whose alias is `alias`.
pub fn named_by_alias(alias: &str) -> Result<Vec<String>> {
    with_netlink(&format!("list links aliased {alias}"), async |h| {
        let mut links = h.link().get().execute();
        let mut names = Vec::new();
        while let Some(link) = links.try_next().await? {
            let attributes = &link.attributes;
            if attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfAlias(x) if x == alias))
            {
                names.extend(attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some(name.clone()),
                    _ => None,
                }));
            }
        }
        Ok(names)
    })
}

/// Brings a link up (a new network namespace starts with `lo` down).
pub fn set_up(name: &str) -> Result<()> {
    with_netlink(&format!("bring {name} up"), async |h| {
        let index = index_of(&h, name)
            .await?
            .ok_or(rtnetlink::Error::RequestFailed)?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
    })
}

/// Deletes a link; one that is already gone is fine.
pub fn delete(name: &str) -> Result<()> {
    with_netlink(&format!("delete link {name}"), async |h| {
        match index_of(&h, name).await? {
            Some(index) => h.link().del(index).execute().await,
            None => Ok(()),
        }
    })
}

/// What a container's end of the pair gets.
pub struct Attachment<'a> {
    pub bridge: &'a str,
    /// Host end, on the bridge.
    pub host_end: &'a str,
    /// Container end until it is renamed `eth0` inside.
    pub peer: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

/// Asks for the veth's peer to be created in the network namespace of
/// `pid`. Moving it there afterwards costs far more: the kernel quiesces
/// the device on the way (16 to 25 ms on this project's test machine,
/// against 3 ms for the whole pair).
fn create_peer_in(veth: &mut LinkMessage, pid: u32) {
    for attribute in &mut veth.attributes {
        let LinkAttribute::LinkInfo(infos) = attribute else {
            continue;
        };
        for info in infos {
            if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = info {
                peer.attributes.push(LinkAttribute::NetNsPid(pid));
            }
        }
    }
}

/// Creates the veth pair with its peer already in the network namespace of
/// `pid`, puts the host end on the bridge, and configures the peer there:
/// renamed `eth0`, addressed, up, with `lo` up and a default route via the
/// gateway.
pub fn connect(pid: i32, link: &Attachment<'_>) -> Result<()> {
    with_netlink(
        &format!("connect {} to bridge {}", link.host_end, link.bridge),
        async |h| {
            let mut veth = LinkVeth::new(link.host_end, link.peer).build();
            create_peer_in(&mut veth, pid as u32);
            h.link().add(veth).execute().await?;
            let Some(bridge) = index_of(&h, link.bridge).await? else {
                return Err(rtnetlink::Error::InvalidNla(format!(
                "bridge {} is missing (was the host rebooted?): remove and re-create the network",
                link.bridge
            )));
            };
            let host_end = index_of(&h, link.host_end).await?.expect("just created");
            h.link()
                .set(
                    LinkUnspec::new_with_index(host_end)
                        .controller(bridge)
                        .up()
                        .build(),
                )
                .execute()
                .await
        },
    )?;
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(Error::io(format!("open the network namespace of {pid}")))?;
    let (peer, address, prefix, gateway) = (
        link.peer.to_owned(),
        link.address,
        link.prefix,
        link.gateway,
    );
    // The thread enters the container's namespace and never leaves it; it
    // ends when this work is done.
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(Error::sys("enter the container's network namespace"))?;
        with_netlink("configure eth0 in the container", async |h| {
            let lo = index_of(&h, "lo").await?.expect("every namespace has lo");
            h.link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await?;
            let index = index_of(&h, &peer).await?.expect("moved in");
            h.link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .name("eth0".to_owned())
                        .build(),
                )
                .execute()
                .await?;
            h.address()
                .add(index, IpAddr::V4(address), prefix)
                .execute()
                .await?;
            h.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await?;
            h.route()
                .add(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .gateway(gateway)
                        .build(),
                )
                .execute()
                .await
        })
    })
    .join()
    .map_err(|_| Error::System("the network setup thread panicked".into()))?
}
