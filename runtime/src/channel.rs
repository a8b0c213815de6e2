//! The socket between launch (parent) and init (child): typed messages and fd passing.
//!
//! A `SOCK_SEQPACKET` pair keeps message boundaries, so each message is one
//! JSON document with no framing of our own. The child's end is close-on-exec:
//! when the user's command replaces init, the parent reads end-of-file, which is
//! how it learns that the exec succeeded.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::cmsg_space;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The largest message the channel carries. A seqpacket message must fit in
/// the socket buffer, which the kernel caps near 200 KiB by default.
pub const MAX_MESSAGE: usize = 192 * 1024;

/// What init needs to build the container, sent once the cgroup is ready.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InitConfig {
    /// Absolute path of the root filesystem on the host.
    pub rootfs: String,
    /// Overlay mount options (`lowerdir=…,upperdir=…,workdir=…`); the
    /// overlay is mounted at `rootfs` inside the new mount namespace.
    pub overlay: Option<String>,
    /// Bind this directory at `rootfs` instead of an overlay (the
    /// [`crate::Fault::SkipOverlay`] defect).
    pub lower_bind: Option<String>,
    /// Bind mounts from the host, made inside before the root is switched.
    pub volumes: Vec<crate::spec::Volume>,
    /// Init is in a new user namespace: device nodes are bound, not made.
    pub user_ns: bool,
    /// Clear supplementary groups (the host's would show as nobody). A
    /// rootless map forbids setgroups, and there are none to clear.
    pub drop_groups: bool,
    /// What init applies just before exec.
    pub security: crate::security::Security,
    /// Stay as PID 1, reaping and passing signals on, with the command as
    /// a child (`--init`).
    pub init_process: bool,
    /// Who the command runs as (an OCI configuration's user replaces it).
    pub user: crate::spec::User,
    /// `--tmpfs` and `--device`: mounts and nodes beyond mydocker's own
    /// (an OCI configuration lists its own instead).
    pub mounts: Vec<crate::spec::mount::Mount>,
    pub devices: Vec<crate::spec::device::Device>,
    /// Report [`Report::SetUp`] before exec, for the timeline.
    pub report_setup: bool,
    /// argv, exactly as the user gave it.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries, the complete environment.
    pub env: Vec<String>,
    /// The value of PATH used to find `args[0]`.
    pub path: String,
    pub hostname: Option<String>,
    pub workdir: String,
    /// Allocate a pseudo-terminal inside the container.
    pub tty: bool,
    /// Keep the inherited stdin; otherwise stdin is `/dev/null`.
    pub interactive: bool,
    /// `tasks` files to write `0` to, which moves init into its cgroup
    /// before it does anything else (see `ContainerCgroup::self_join_files`).
    pub join_cgroup: Vec<String>,
    /// Enter a new cgroup namespace once we are in our cgroup.
    pub new_cgroup_ns: bool,
    /// Init runs in a new network namespace.
    pub new_net_ns: bool,
    /// Init runs in a new mount namespace (so it may change propagation).
    pub new_mount_ns: bool,
    /// Deliberate defects (see [`crate::Fault`]); init asks it before each
    /// step a fault skips: private propagation, pivot_root, detaching the old
    /// root, masking.
    pub faults: crate::Faults,
    /// Resource limits to set just before the capabilities drop.
    pub rlimits: Vec<crate::spec::rlimit::Rlimit>,
    /// OCI's create/start split: an inherited `O_PATH` descriptor of the
    /// container's exec fifo. Init reports [`Report::Ready`], then blocks
    /// opening the fifo for writing until `start` opens it for reading.
    pub start_fifo: Option<i32>,
    /// Descriptors 3 to 3+N-1, inherited from whoever ran `create`
    /// (`--preserve-fds N`), that the command keeps open.
    pub preserve_fds: u32,
    /// Descriptors, inherited across clone, to install as stdin, stdout and stderr.
    pub stdio: [Option<i32>; 3],
    /// What an OCI configuration says beyond the rest: its mounts, devices,
    /// user, capability sets, seccomp profile, masked paths and sysctls.
    pub oci: Option<crate::spec::OciParts>,
}

/// What init tells the parent before it execs.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    /// The pty master travels with this message as an `SCM_RIGHTS` fd.
    PtyMaster,
    /// Set up and confined, waiting for `start` (the OCI create/start
    /// split); init waits for [`Detach`] next.
    Ready,
    /// Init no longer dies with the launching process, which may exit.
    Detached,
    /// Setup or exec failed; init exits with `exit_code` after sending this.
    Failed {
        exit_code: i32,
        message: String,
        /// The kernel lacks what the failed step needs.
        #[serde(default)]
        kernel_lacks: bool,
    },
    /// Init finished its setup at this [`crate::timeline::now`] and execs next
    /// (sent only when the spec asks for a timeline).
    SetUp { at: u64 },
}

/// The launcher's word to a [`Report::Ready`] init: the container is
/// recorded, and init may outlive the launcher.
#[derive(Debug, Serialize, Deserialize)]
pub struct Detach;

/// One end of the launch ↔ init socket.
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the pair: (parent's end, child's end), both close-on-exec.
pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends one message, with optional file descriptors attached.
    pub fn send<T: Serialize>(&self, message: &T, fds: &[RawFd]) -> nix::Result<()> {
        let bytes = serde_json::to_vec(message).expect("channel messages always serialize");
        if bytes.len() > MAX_MESSAGE {
            return Err(nix::Error::E2BIG);
        }
        let iov = [IoSlice::new(&bytes)];
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Whether the other end has closed (its process died), without
    /// waiting or reading. A poll that fails says nothing: false.
    pub fn peer_gone(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // POLLHUP needs no asking: a unix socket reports it once its peer
        // is closed, whoever had messages left in it.
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::empty())];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|_| {
            fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP))
        })
    }

    /// Receives one message and the fds that came with it; `None` at end-of-file.
    pub fn recv<T: DeserializeOwned>(&self) -> nix::Result<Option<(T, Vec<OwnedFd>)>> {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        let mut cmsg_buffer = cmsg_space!([RawFd; 4]);
        let (len, fds, truncated) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let msg = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg_buffer),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::Error::EINTR) => continue,
                    other => break other?,
                }
            };
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = cmsg {
                    // SAFETY: the kernel just installed these fds for us alone.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            (msg.bytes, fds, msg.flags.contains(MsgFlags::MSG_TRUNC))
        };
        if len == 0 {
            return Ok(None);
        }
        if truncated {
            return Err(nix::Error::EMSGSIZE);
        }
        let message = serde_json::from_slice(&buffer[..len]).map_err(|_| nix::Error::EBADMSG)?;
        Ok(Some((message, fds)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
