//! A terminal for a client under test: a pty whose slave is the client's
//! stdio, and reads of what the master shows, with a deadline.

use std::time::{Duration, Instant};

/// Kills a client (mydocker, podman) that a failed assertion would otherwise
/// leave running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Spawns `command` with a new terminal of `rows` × `cols` (sized first, so
/// that the client reads that size) as its stdio, as a user's shell would run
/// it; returns the child and the master side.
pub fn on_a_terminal(
    mut command: std::process::Command,
    (rows, cols): (u16, u16),
) -> (KillOnDrop, std::fs::File) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let master = std::fs::File::from(pty.master);
    set_window(&master, rows, cols);
    command
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let child = KillOnDrop(command.spawn().unwrap());
    (child, master)
}

/// A client puts the terminal into raw mode; it must hand it back cooked.
pub fn assert_cooked(master: &std::fs::File) {
    let modes = nix::sys::termios::tcgetattr(master).unwrap();
    assert!(modes
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO));
}

/// Sets the window size of the terminal behind `master`.
pub fn set_window(master: &std::fs::File, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    assert_eq!(
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(master),
                libc::TIOCSWINSZ,
                &size,
            )
        },
        0
    );
}

/// Reads from a pty master until `needle` appears, failing after a deadline.
pub fn read_until(master: &std::fs::File, needle: &str, seen: &mut String) {
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buffer = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "never saw {needle:?}; terminal showed:\n{seen}"
        );
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u8)).unwrap() == 0 {
            continue;
        }
        // EIO: every slave descriptor is closed, so the client has exited
        // and nothing more will come.
        let n = (&*master)
            .read(&mut buffer)
            .unwrap_or_else(|e| panic!("never saw {needle:?} ({e}); terminal showed:\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
}
