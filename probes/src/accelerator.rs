//! How the machine running the probes executes them: natively, or as a QEMU
//! guest under KVM or under TCG's emulation.

use serde::{Deserialize, Serialize};

/// The environment variable through which a guest's init tells the probes.
pub const ENV: &str = "MYDOCKER_ACCEL";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// Not a guest: the probes run on the machine itself.
    Host,
    /// A guest whose CPUs are the host's, through the kernel's KVM.
    Kvm,
    /// A guest whose CPUs QEMU emulates, one host thread each: 5–10× slower,
    /// and a virtual CPU may stall for tens of milliseconds.
    Tcg,
}

impl Accelerator {
    /// The name QEMU's `-accel` and the reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Host => "host",
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }

    /// What [`ENV`] says; `Host` when it is unset (no guest init set it).
    pub fn from_env() -> Result<Accelerator, String> {
        match std::env::var(ENV) {
            Ok(name) => name.parse().map_err(|e| format!("{ENV}: {e}")),
            Err(_) => Ok(Accelerator::Host),
        }
    }
}

impl std::fmt::Display for Accelerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Accelerator {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Accelerator::Host, Accelerator::Kvm, Accelerator::Tcg]
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| format!("unknown accelerator {name:?}: expected host, kvm or tcg"))
    }
}
