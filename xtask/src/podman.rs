//! podman and what it needs to drive an OCI runtime here: installed from Debian when missing.

use crate::prereq::ensure_package;

/// Debian's podman (4.3 on bookworm).
pub const PODMAN: &str = "/usr/bin/podman";
/// The monitor podman puts between itself and the runtime.
pub const CONMON: &str = "/usr/bin/conmon";
/// One of the CNI plugins podman 4.3 runs for a bridge network.
pub const CNI_BRIDGE: &str = "/usr/lib/cni/bridge";

/// Installs podman, conmon and the CNI plugins when they are missing.
///
/// Bookworm's containers-common asks for a network stack, CNI's
/// `containernetworking-plugins` or `netavark`; apt picks CNI, and podman
/// 4.3 then uses CNI for its default network. It is named here so that the
/// choice does not depend on apt's, and conmon too, though podman pulls it
/// in: the tests call both by name. Recommends (buildah, slirp4netns,
/// fuse-overlayfs...) serve rootless use and are left out.
pub fn ensure_podman() -> Result<(), String> {
    ensure_package("containernetworking-plugins", CNI_BRIDGE)?;
    ensure_package("conmon", CONMON)?;
    ensure_package("podman", PODMAN)
}
