//! The caller's terminal: raw mode while a container owns it, and window sizes.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

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

/// Relays between our terminal and `master` until `child` exits: output
/// always, input when `interactive` (our terminal raw meanwhile, so keys
/// such as Ctrl-C travel to the child's terminal). Returns how it exited.
pub fn relay_until_exit(
    master: std::os::fd::OwnedFd,
    child: nix::unistd::Pid,
    interactive: bool,
) -> nix::sys::wait::WaitStatus {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = if interactive {
        RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    copy_window_size(std::io::stdin(), &master);
    // Keystrokes go through a buffer and non-blocking writes: a command that
    // is busy writing and not reading must not stall the relay of its output.
    if let Ok(flags) = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL) {
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        let _ = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    let mut stdin_open = interactive;
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let master_events = if pending.is_empty() {
            PollFlags::POLLIN
        } else {
            PollFlags::POLLIN | PollFlags::POLLOUT
        };
        let mut fds = vec![PollFd::new(master.as_fd(), master_events)];
        // More keystrokes only once the terminal took the last ones.
        if stdin_open && pending.is_empty() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(100u8));
        let master_events = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if master_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            if let Ok(n @ 1..) = nix::unistd::read(&master, &mut buffer) {
                write_all(stdout.as_fd(), &buffer[..n]);
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                Ok(n) if n > 0 => pending.extend_from_slice(&buffer[..n]),
                _ => {
                    pending.push(0x04);
                    stdin_open = false;
                }
            }
        }
        while !pending.is_empty() {
            match nix::unistd::write(&master, &pending) {
                Ok(n) => drop(pending.drain(..n)),
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => break,
                Err(_) => pending.clear(),
            }
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::EINTR) => {}
            Ok(status) => {
                // Drain what the child wrote just before it exited.
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                while matches!(poll(&mut fds, PollTimeout::from(50u8)), Ok(n) if n > 0) {
                    match nix::unistd::read(&master, &mut buffer) {
                        Ok(n) if n > 0 => write_all(stdout.as_fd(), &buffer[..n]),
                        _ => break,
                    }
                }
                return status;
            }
            Err(_) => return WaitStatus::Exited(child, crate::error::EXIT_RUNTIME),
        }
    }
}
