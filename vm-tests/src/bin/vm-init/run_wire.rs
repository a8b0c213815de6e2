//! The wire format of `cargo xtask vm-test run`, between the host and the
//! guest's PID 1. The host packs the command's argv into the initramfs;
//! the guest streams the command's stdout and stderr, then its exit status,
//! as lines on the report port (ttyS1), which the host reads as they come.
//!
//! This file has only `std` in it because both sides compile it: vm-init as
//! its module `run_wire`, and xtask (`xtask/src/vm/run.rs`) by `#[path]`, so
//! the encoder and the decoder of each half can never drift apart.
//!
//! The argv file is the argv's bytes, each argument followed by a NUL, as
//! `/proc/PID/cmdline` has it: exact for any argument, since none can hold a
//! NUL (`execve(2)` would cut it there), and with no length limit, where the
//! kernel command line has 2048 bytes in all.
//!
//! Each report-port line is `mydocker-run TAG PAYLOAD`:
//!
//! | tag | payload | meaning |
//! |---|---|---|
//! | `out` | hex bytes | a chunk of the command's stdout |
//! | `err` | hex bytes | a chunk of its stderr |
//! | `exit` | decimal | it exited with this code (the last line) |
//! | `signal` | decimal | a signal killed it (the last line) |
//! | `fail` | hex UTF-8 | it could not be started, and why (the last line) |
//!
//! Output travels as hex so that no byte the command writes can look like a
//! frame or be changed by the tty; a line is found by its prefix anywhere in
//! it, so a stray byte before it (a UART waking up) does no harm.

// Each side uses its own half.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The initramfs directory that holds the command and its argv.
pub const DIR: &str = "run-cmd";
/// The argv file, relative to the initramfs root.
pub const ARGV_FILE: &str = "run-cmd/argv";
/// What every line of the stream starts with.
pub const PREFIX: &str = "mydocker-run ";

/// Encodes an argv for [`ARGV_FILE`]. An empty argv or an argument with a
/// NUL byte cannot be executed and is refused, naming the argument.
pub fn encode_argv<S: AsRef<OsStr>>(argv: &[S]) -> Result<Vec<u8>, String> {
    if argv.is_empty() {
        return Err("an empty argv has no program to run".into());
    }
    let mut bytes = Vec::new();
    for arg in argv {
        let arg = arg.as_ref().as_bytes();
        if arg.contains(&0) {
            return Err(format!(
                "the argument {:?} holds a NUL byte, which execve cannot pass",
                String::from_utf8_lossy(arg)
            ));
        }
        bytes.extend_from_slice(arg);
        bytes.push(0);
    }
    Ok(bytes)
}

/// Reads an argv that [`encode_argv`] wrote.
pub fn decode_argv(bytes: &[u8]) -> Result<Vec<OsString>, String> {
    let Some(body) = bytes.strip_suffix(&[0]) else {
        return Err(if bytes.is_empty() {
            "the argv file is empty".into()
        } else {
            "the argv file does not end with a NUL: it was cut short".into()
        });
    };
    Ok(body
        .split(|&b| b == 0)
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect())
}

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exited(i32),
    Signaled(i32),
    Failed(String),
}

impl Frame {
    /// The line, with its line break.
    pub fn encode(&self) -> String {
        let (tag, payload) = match self {
            Frame::Stdout(bytes) => ("out", hex(bytes)),
            Frame::Stderr(bytes) => ("err", hex(bytes)),
            Frame::Exited(code) => ("exit", code.to_string()),
            Frame::Signaled(signal) => ("signal", signal.to_string()),
            Frame::Failed(why) => ("fail", hex(why.as_bytes())),
        };
        format!("{PREFIX}{tag} {payload}\n")
    }

    /// Reads one line: `None` when it holds no frame (console noise),
    /// an error when it starts like one but does not parse.
    pub fn decode(line: &[u8]) -> Option<Result<Frame, String>> {
        let start = find(line, PREFIX.as_bytes())?;
        let text = String::from_utf8_lossy(&line[start + PREFIX.len()..]);
        let text = text.trim_end_matches(['\r', '\n']);
        let (tag, payload) = text.split_once(' ').unwrap_or((text, ""));
        let number = |what: &str| {
            payload
                .parse::<i32>()
                .map_err(|_| format!("a {what} frame with a bad number: {text:?}"))
        };
        let bytes = || unhex(payload).ok_or_else(|| format!("a {tag} frame with bad hex"));
        Some(match tag {
            "out" => bytes().map(Frame::Stdout),
            "err" => bytes().map(Frame::Stderr),
            "exit" => number("exit").map(Frame::Exited),
            "signal" => number("signal").map(Frame::Signaled),
            "fail" => bytes().map(|b| Frame::Failed(String::from_utf8_lossy(&b).into_owned())),
            _ => Err(format!("an unknown frame {text:?}")),
        })
    }

    /// Whether this frame ends the stream.
    pub fn is_status(&self) -> bool {
        matches!(
            self,
            Frame::Exited(_) | Frame::Signaled(_) | Frame::Failed(_)
        )
    }
}

/// Splits a stream read in arbitrary pieces into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Vec<u8>,
}

impl Decoder {
    /// The frames completed by `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Frame, String>> {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        complete
            .split(|&b| b == b'\n')
            .filter_map(Frame::decode)
            .collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_argv_round_trips() {
        let argv: Vec<OsString> = vec![
            "/run-cmd/busybox".into(),
            "sh".into(),
            "-c".into(),
            "echo \"a  b\" 'c'; printf '%s\\n' $HOME\n\texit 3".into(),
            "".into(),
            "--".into(),
            "mydocker.run=1 console=ttyS0".into(),
            "é ☃".into(),
            OsString::from_vec(vec![0xff, 0xfe, b' ', 0x80]),
            "".into(),
        ];
        let bytes = encode_argv(&argv).unwrap();
        assert_eq!(decode_argv(&bytes).unwrap(), argv);
        assert_eq!(
            decode_argv(&encode_argv(&["only"]).unwrap()).unwrap(),
            ["only"]
        );
    }

    #[test]
    fn a_bad_argv_is_refused() {
        assert!(encode_argv::<&str>(&[]).is_err());
        let nul = encode_argv(&["prog", "a\0b"]).unwrap_err();
        assert!(nul.contains("NUL") && nul.contains("a\\0b"), "{nul}");
        assert!(decode_argv(b"").unwrap_err().contains("empty"));
        assert!(decode_argv(b"prog\0trunc").unwrap_err().contains("cut"));
    }

    #[test]
    fn frames_round_trip_through_noise_and_any_split() {
        let frames = vec![
            Frame::Stdout(b"hello\n".to_vec()),
            Frame::Stderr((0..=255).collect()),
            Frame::Stdout(format!("{PREFIX}exit 0\n").into_bytes()),
            Frame::Exited(3),
        ];
        let mut stream = b"\0\x1b[0m boot noise\r\n".to_vec();
        for frame in &frames {
            // The tty may turn each line break into CR LF.
            stream.extend(frame.encode().replace('\n', "\r\n").bytes());
        }
        stream.extend(b"trailing noise without a frame\n");
        for piece in [1, 7, stream.len()] {
            let mut decoder = Decoder::default();
            let decoded: Vec<Frame> = stream
                .chunks(piece)
                .flat_map(|chunk| decoder.feed(chunk))
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(decoded, frames, "pieces of {piece}");
        }
    }

    #[test]
    fn the_exit_status_frames_parse() {
        let parse = |line: &str| Frame::decode(line.as_bytes()).unwrap();
        assert_eq!(parse("mydocker-run exit 3\r"), Ok(Frame::Exited(3)));
        assert_eq!(parse("\0\0mydocker-run exit 0"), Ok(Frame::Exited(0)));
        assert_eq!(parse("mydocker-run signal 9"), Ok(Frame::Signaled(9)));
        let failed = Frame::Failed("exec /run-cmd/x: ENOEXEC".into());
        assert_eq!(parse(&failed.encode()), Ok(failed.clone()));
        assert!(failed.is_status() && Frame::Exited(0).is_status());
        assert!(!Frame::Stdout(vec![]).is_status());
        assert!(parse("mydocker-run exit three").is_err());
        assert!(parse("mydocker-run out 0g").is_err());
        assert!(parse("mydocker-run out 012").is_err());
        assert!(parse("mydocker-run bogus 1").is_err());
        assert_eq!(Frame::decode(b"[ 1.0] mydocker-vm-init: hello"), None);
    }
}
