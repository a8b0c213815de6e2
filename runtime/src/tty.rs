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
