//! OCI hooks: programs the configuration names, run by the runtime at
//! points of a container's life, each given the container's state.
//!
//! A hook is a host program (`path`, `args` with its argv[0], `env`, a
//! `timeout` in seconds) that the runtime runs in its own namespaces and
//! waits for, writing the state document (`mydocker state ID`'s JSON) to
//! its stdin. They let a caller take part without being the runtime: a
//! prestart hook typically configures the container's network namespace.
//! mydocker runs `createRuntime` and `prestart` once init is set up and
//! waiting (a failure fails `create`), `poststart` once `start` has let
//! the process run, and `poststop` once `delete` has removed the container
//! (a failure of either is a warning: the container's life goes on). The
//! hooks run inside the container (`createContainer`, `startContainer`)
//! are refused when the configuration is read.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Which hooks of a configuration, by the specification's name.
#[derive(Debug, Clone, Copy)]
pub enum Point {
    CreateRuntime,
    Prestart,
    Poststart,
    Poststop,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::CreateRuntime => "createRuntime",
            Point::Prestart => "prestart",
            Point::Poststart => "poststart",
            Point::Poststop => "poststop",
        }
    }

    /// The hooks of `config` at this point, in order.
    pub fn of(self, config: &oci_spec::runtime::Spec) -> Vec<Hook> {
        let Some(hooks) = config.hooks() else {
            return Vec::new();
        };
        #[allow(deprecated)] // prestart: deprecated by the specification, still sent.
        let list = match self {
            Point::CreateRuntime => hooks.create_runtime(),
            Point::Prestart => hooks.prestart(),
            Point::Poststart => hooks.poststart(),
            Point::Poststop => hooks.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Runs `hooks` one after another, each with `state` on its stdin; stops
/// at the first that fails or outlives its timeout (which is killed).
pub fn run(point: Point, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let what = format!("hooks.{}[{i}] ({})", point.name(), hook.path().display());
        let args = hook.args().clone().unwrap_or_default();
        let mut command = Command::new(hook.path());
        if let Some((argv0, rest)) = args.split_first() {
            std::os::unix::process::CommandExt::arg0(&mut command, argv0);
            command.args(rest);
        }
        command.env_clear();
        for entry in hook.env().iter().flatten() {
            if let Some((key, value)) = entry.split_once('=') {
                command.env(key, value);
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .spawn()
            .map_err(Error::io(format!("run {what}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its state may close stdin: not a failure.
            let _ = stdin.write_all(state.to_string().as_bytes());
        }
        let limit = hook
            .timeout()
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(Error::io(format!("wait for {what}")))?
            {
                break status;
            }
            if limit.is_some_and(|limit| started.elapsed() > limit) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::System(format!(
                    "{what} ran past its timeout of {} s and was killed",
                    limit.expect("checked").as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if !status.success() {
            return Err(Error::System(format!("{what} failed: {status}")));
        }
    }
    Ok(())
}
