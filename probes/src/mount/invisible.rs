//! # `mount.invisible`: mounts do not cross between the container and the host, either way
//!
//! **The feature.** `clone(CLONE_NEWNS)` gives the child a copy of the
//! caller's mount table. A copy alone is not enough: mounts can be *shared*,
//! and a mount event on one member of a peer group is replayed on every other
//! member (`Documentation/filesystems/sharedsubtree.rst`). systemd makes `/`
//! shared on most hosts, so the copy's mounts start as peers of the host's.
//! A runtime must mark everything private (`MS_PRIVATE | MS_REC`) before it
//! mounts anything. This probe process sets its own (throwaway) mount
//! namespace to shared, so a runtime that skips that step would be caught.
//!
//! **How the probe looks.** The helper mounts a tmpfs named `probe-tmpfs`
//! inside; the probe then reads its own `/proc/self/mountinfo` for it. The
//! probe mounts a tmpfs of its own under the container's root as the host
//! sees it (the overlay's mount point); the helper reads its `mountinfo` for
//! that one. Mounting takes CAP_SYS_ADMIN, which containers lose by default
//! (`sec.caps`), so both runs keep it, as `--cap-add SYS_ADMIN` would.
//!
//! **The control.** The same helper without `CLONE_NEWNS` (entering the
//! rootfs with chroot, in the probe's throwaway namespace): its tmpfs shows
//! up in the probe's mount table, and the probe's shows up in its own. Both
//! directions must cross in the control, or the probe proves nothing.
//!
//! **Verdict.** Pass when neither side sees the other's mount.

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "mount.invisible",
    property:
        "mounts made inside never appear on the host, and later host mounts never appear inside",
    needs: Needs::NOTHING,
    mutations: &[
        Mutation::SkipMountNamespace,
        Mutation::Fault(Fault::KeepSharedPropagation),
    ],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// Mount point of the helper's tmpfs, inside the container.
const INSIDE: &str = "/probe-mnt";
/// The source name of the helper's tmpfs, to find it in a mount table.
const INSIDE_SOURCE: &str = "probe-tmpfs";
/// Mount point of the probe's tmpfs, relative to the container's root.
const FROM_HOST: &str = "host-mnt";

/// The helper's first report: its tmpfs is mounted.
#[derive(Debug, Serialize, Deserialize)]
struct Mounted;

/// The helper's second report: whether the probe's later mount showed up.
#[derive(Debug, Serialize, Deserialize)]
struct SeesHostMount(bool);

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let (leaked_out, leaked_in, evidence) = observe(lab, lab.admin_spec(&()), Role::Isolated)?;
    let mut spec = lab.admin_spec(&());
    spec.namespaces.mount = false;
    spec.faults.insert(Fault::ChrootInsteadOfPivotRoot);
    let (control_out, control_in, control) = observe(lab, spec, Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_out && control_in,
        property: Property::held_if(
            !leaked_out && !leaked_in,
            match (leaked_out, leaked_in) {
                (true, true) => "mounts crossed both ways",
                (true, false) => "the container's mount appeared on the host",
                _ => "the host's mount appeared in the container",
            },
        ),
    }
    .finding())
}

/// Returns (container mount seen on the host, host mount seen inside, evidence).
fn observe(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(bool, bool, Evidence), LabError> {
    let mut session = lab.start(spec, role)?;
    let Mounted = session.receive()?;
    let leaked_out = kernel::mounts("self")
        .or_broken("read the probe's mount table")?
        .iter()
        .any(|m| m.source == INSIDE_SOURCE);

    let host_dir = session.root_on_host().join(FROM_HOST);
    std::fs::create_dir_all(&host_dir)?;
    mount(
        Some("probe-host-tmpfs"),
        &host_dir,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    session.send_line(&format!("/{FROM_HOST}"))?;
    let seen = session.receive::<SeesHostMount>();
    umount2(&host_dir, MntFlags::MNT_DETACH)?;
    let SeesHostMount(leaked_in) = seen?;
    session.finish()?;
    Ok((
        leaked_out,
        leaked_in,
        evidence![
            "helper mounted tmpfs at" => INSIDE,
            format!("host mountinfo lists {INSIDE_SOURCE}") => leaked_out,
            format!("container mountinfo lists /{FROM_HOST} (mounted on the host later)") => leaked_in,
        ],
    ))
}

/// Inside: mounts a tmpfs at [`INSIDE`], then waits for the probe to name a
/// host mount point on stdin and says whether our mount table shows it.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    std::fs::create_dir_all(INSIDE).with_context(|| format!("create {INSIDE}"))?;
    mount(
        Some(INSIDE_SOURCE),
        INSIDE,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mount tmpfs on {INSIDE}"))?;
    helper.say(&Mounted)?;
    let wanted = helper.hear()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let seen = table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()));
    helper.say(&SeesHostMount(seen))
}
