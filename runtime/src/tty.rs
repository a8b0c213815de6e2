//! The caller's terminal: raw mode while a container owns it, window sizes,
//! new pseudo-terminals, and the one relay between a terminal and a pty.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Puts a terminal into raw mode and restores it when dropped, so keys such as
/// Ctrl-C reach the container's terminal instead of signalling mydocker.
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Enters raw mode if `fd` is a terminal; `None` otherwise.
    pub fn enter(fd: BorrowedFd<'fd>) -> Option<RawMode<'fd>> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of terminal `from` to terminal `to`. Does nothing
/// when `from` is not a terminal.
pub fn copy_window_size(from: impl AsFd, to: impl AsFd) {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: both ioctls read or write exactly one winsize.
    unsafe {
        if get_winsize(from.as_fd().as_raw_fd(), &mut size).is_ok() {
            let _ = set_winsize(to.as_fd().as_raw_fd(), &size);
        }
    }
}

/// Writes all of `bytes`, giving up silently if the reader has gone away:
/// a relay must not fail because nobody is reading its output any more.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Opens a new terminal pair from `/dev/ptmx` of the current mount
/// namespace: the master (close-on-exec) and the slave's path.
pub fn open_pty() -> nix::Result<(std::os::fd::OwnedFd, String)> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    // SAFETY: we own the master fd and hand its ownership over.
    let fd = unsafe {
        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(
            std::os::fd::IntoRawFd::into_raw_fd(master),
        )
    };
    Ok((fd, name))
}

/// Makes this process a session leader whose controlling terminal, and
/// stdin, stdout and stderr, are the terminal at `slave`.
pub fn become_terminal_session(slave: &str) -> nix::Result<()> {
    use nix::fcntl::{open, OFlag};
    nix::unistd::setsid()?;
    let fd = open(slave, OFlag::O_RDWR, nix::sys::stat::Mode::empty())?;
    // SAFETY: TIOCSCTTY takes an int argument and touches no memory of ours.
    nix::errno::Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    nix::unistd::dup2_stdin(&fd)?;
    nix::unistd::dup2_stdout(&fd)?;
    nix::unistd::dup2_stderr(&fd)
}

/// Copies bytes between our terminal and a container's pty master: its
/// output to our stdout, our keystrokes (when interactive) to it. Neither
/// direction may block the other: a command that is busy writing and not
/// reading must not stall the relay of its output, so keystrokes wait in a
/// buffer and go out with non-blocking writes. The caller owns the poll loop
/// (it has other things to watch) and asks the relay what to poll for.
pub struct Relay {
    master: OwnedFd,
    /// Keystrokes read from our stdin that the pty has not accepted yet.
    pending: Vec<u8>,
    stdin_open: bool,
    output_open: bool,
}

impl Relay {
    /// Takes over `master`, makes it non-blocking and gives it our window
    /// size. A master that stays blocking could stall the caller's loop, so
    /// failing to change it is an error.
    pub fn new(master: OwnedFd, interactive: bool) -> nix::Result<Relay> {
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        copy_window_size(std::io::stdin(), &master);
        Ok(Relay {
            master,
            pending: Vec::new(),
            stdin_open: interactive,
            output_open: true,
        })
    }

    /// The master and what to poll it for; `None` once the terminal closed.
    pub fn master_interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let events = if self.pending.is_empty() {
            PollFlags::POLLIN
        } else {
            PollFlags::POLLIN | PollFlags::POLLOUT
        };
        self.output_open.then(|| (self.master.as_fd(), events))
    }

    /// Whether to poll our stdin: more keystrokes only once the terminal
    /// took the last ones.
    pub fn wants_input(&self) -> bool {
        self.stdin_open && self.pending.is_empty()
    }

    /// Acts on what poll reported for the master.
    pub fn on_master(&mut self, events: PollFlags) {
        if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.output_open = self.copy_output(None);
        }
        if events.contains(PollFlags::POLLOUT) {
            self.flush_input();
        }
    }

    /// Reads what the user typed and passes it on. At end of input it sends
    /// the terminal's end-of-file character, as typing Ctrl-D would.
    pub fn on_stdin(&mut self) {
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut buffer) {
            Ok(n @ 1..) => self.pending.extend_from_slice(&buffer[..n]),
            _ => {
                self.pending.push(0x04);
                self.stdin_open = false;
            }
        }
        self.flush_input();
    }

    /// Gives the master our window size again (after SIGWINCH).
    pub fn resize(&self) {
        copy_window_size(std::io::stdin(), &self.master);
    }

    /// After the command exited: copies what it wrote just before, waiting a
    /// little for each chunk (a grandchild may still hold the terminal open).
    pub fn drain(&mut self) {
        while self.output_open {
            self.output_open = self.copy_output(Some(PollTimeout::from(100u8)));
        }
    }

    /// Copies one chunk of output to our stdout. Returns false once the
    /// terminal is closed (EIO when no process holds it any more), or, with
    /// `wait`, when nothing arrives within it.
    fn copy_output(&mut self, wait: Option<PollTimeout>) -> bool {
        if let Some(timeout) = wait {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
                return false;
            }
        }
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(&self.master, &mut buffer) {
            Ok(0) | Err(Errno::EIO) => false,
            Ok(n) => {
                write_all(std::io::stdout().as_fd(), &buffer[..n]);
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Writes as much pending input as the pty takes without blocking.
    fn flush_input(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => self.pending.clear(),
            }
        }
    }
}

/// Relays between our terminal and `master` until `child` exits (our
/// terminal raw meanwhile when `interactive`, so keys such as Ctrl-C travel
/// to the child's terminal). Returns how it exited.
pub fn relay_until_exit(master: OwnedFd, child: Pid, interactive: bool) -> WaitStatus {
    let stdin = std::io::stdin();
    let _raw = interactive.then(|| RawMode::enter(stdin.as_fd())).flatten();
    let Ok(mut relay) = Relay::new(master, interactive) else {
        // No relay: the child still runs, and its exit still counts.
        return loop {
            match waitpid(child, None) {
                Err(Errno::EINTR) => continue,
                Ok(status) => break status,
                Err(_) => break WaitStatus::Exited(child, crate::error::EXIT_RUNTIME),
            }
        };
    };
    loop {
        {
            let mut fds = Vec::with_capacity(2);
            if let Some((master, events)) = relay.master_interest() {
                fds.push(PollFd::new(master, events));
            }
            let master_slot = (!fds.is_empty()).then_some(0);
            let stdin_slot = relay.wants_input().then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            // The timeout bounds how late the child's exit is noticed.
            let _ = poll(&mut fds, PollTimeout::from(100u8));
            let revents = |slot: Option<usize>| {
                slot.and_then(|i| fds[i].revents())
                    .unwrap_or(PollFlags::empty())
            };
            let (master_events, stdin_ready) =
                (revents(master_slot), !revents(stdin_slot).is_empty());
            drop(fds);
            relay.on_master(master_events);
            if stdin_ready {
                relay.on_stdin();
            }
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => {
                relay.drain();
                return status;
            }
            Err(_) => return WaitStatus::Exited(child, crate::error::EXIT_RUNTIME),
        }
    }
}

/// Hands `master` to whoever listens on the AF_UNIX socket at `path`
/// (OCI's console socket, runc's protocol): one message whose payload names
/// the terminal and which carries the descriptor as `SCM_RIGHTS`; no reply.
pub fn send_to_console_socket(
    path: &std::path::Path,
    master: &std::os::fd::OwnedFd,
) -> std::io::Result<()> {
    send_to_console(&std::os::unix::net::UnixStream::connect(path)?, master)
}

/// [`send_to_console_socket`] over a socket connected already (exec
/// connects before it enters the container's mount namespace).
pub fn send_to_console(
    stream: &std::os::unix::net::UnixStream,
    master: &std::os::fd::OwnedFd,
) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [master.as_raw_fd()];
    let payload = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &payload,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}
