//! Resource limits of the process (`setrlimit`): docker's `--ulimit
//! NAME=SOFT[:HARD]` and OCI's `process.rlimits`, as one plain value.
//!
//! Unlike a cgroup limit, which bounds the container as a whole, an rlimit
//! is a per-process ceiling the kernel checks on each call: `RLIMIT_NOFILE`
//! caps the descriptor numbers `open` may return, `RLIMIT_NPROC` the
//! processes the user may have. A process may lower its own limits, and
//! raise the soft one up to the hard one; raising a hard limit needs
//! CAP_SYS_RESOURCE, which is why init sets them before it drops
//! capabilities. Children inherit them, so the container's command and
//! everything it starts live under them.

use crate::error::{Error, Result};

/// One limit: the resource, and its soft and hard values (`u64::MAX` is
/// unlimited, the kernel's `RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The resources, by the kernel's numbering (asm-generic/resource.h).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "lowercase")]
pub enum Resource {
    Cpu = 0,
    Fsize = 1,
    Data = 2,
    Stack = 3,
    Core = 4,
    Rss = 5,
    Nproc = 6,
    Nofile = 7,
    Memlock = 8,
    As = 9,
    Locks = 10,
    Sigpending = 11,
    Msgqueue = 12,
    Nice = 13,
    Rtprio = 14,
    Rttime = 15,
}

impl Resource {
    /// docker's name (`nofile`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The kernel's number, for `setrlimit`.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// By docker's name (`nofile`) or OCI's (`RLIMIT_NOFILE`).
    pub fn from_name(name: &str) -> Option<Resource> {
        use strum::IntoEnumIterator;
        let short = name.strip_prefix("RLIMIT_").unwrap_or(name).to_lowercase();
        Resource::iter().find(|r| r.name() == short)
    }
}

impl Rlimit {
    /// Parses docker's `NAME=SOFT[:HARD]` (`-1` is unlimited; a lone value
    /// is both soft and hard).
    pub fn parse(text: &str) -> Result<Rlimit> {
        let expected = "NAME=SOFT[:HARD], such as nofile=1024:4096, with NAME one of \
             core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, \
             rss, rtprio, rttime, sigpending, stack, as";
        let invalid = || Error::invalid("--ulimit", text, expected);
        let (name, values) = text.split_once('=').ok_or_else(invalid)?;
        let resource = Resource::from_name(name)
            .filter(|_| !name.starts_with("RLIMIT_"))
            .ok_or_else(invalid)?;
        let value = |v: &str| match v {
            "-1" => Some(u64::MAX),
            v => v.parse::<u64>().ok(),
        };
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (value(soft), value(hard)),
            None => (value(values), value(values)),
        };
        let (Some(soft), Some(hard)) = (soft, hard) else {
            return Err(invalid());
        };
        Rlimit::new(resource, soft, hard).map_err(|_| {
            Error::invalid(
                "--ulimit",
                text,
                "a soft limit no greater than the hard one",
            )
        })
    }

    /// A limit whose soft value does not exceed its hard one (the kernel
    /// refuses that with EINVAL).
    pub fn new(resource: Resource, soft: u64, hard: u64) -> Result<Rlimit> {
        if soft > hard {
            return Err(Error::invalid(
                "rlimit",
                format!("{}={soft}:{hard}", resource.name()),
                "a soft limit no greater than the hard one",
            ));
        }
        Ok(Rlimit {
            resource,
            soft,
            hard,
        })
    }
}

/// Refuses two limits on one resource: which should win is not for us to guess.
pub fn check_unique(limits: &[Rlimit], what: &'static str) -> Result<()> {
    for (i, limit) in limits.iter().enumerate() {
        if limits[..i].iter().any(|l| l.resource == limit.resource) {
            return Err(Error::invalid(
                what,
                limit.resource.name(),
                "given twice: one limit per resource",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms_parse() {
        assert_eq!(
            Rlimit::parse("nofile=1024:4096").unwrap(),
            Rlimit {
                resource: Resource::Nofile,
                soft: 1024,
                hard: 4096
            }
        );
        let both = Rlimit::parse("nproc=64").unwrap();
        assert_eq!((both.soft, both.hard), (64, 64));
        let unlimited = Rlimit::parse("core=-1").unwrap();
        assert_eq!(unlimited.hard, u64::MAX);
        assert_eq!(Resource::Nofile.number(), 7);
        assert_eq!(Resource::from_name("RLIMIT_NOFILE"), Some(Resource::Nofile));
    }

    #[test]
    fn bad_ulimits_are_refused_naming_the_value() {
        for bad in [
            "nofile",
            "files=10",
            "nofile=ten",
            "nofile=10:x",
            "nofile=20:10",
            "RLIMIT_NOFILE=10",
            "nofile=-2",
        ] {
            let message = Rlimit::parse(bad).unwrap_err().to_string();
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.starts_with("invalid --ulimit"), "{message}");
        }
        let twice = [
            Rlimit::parse("nofile=1").unwrap(),
            Rlimit::parse("nofile=2").unwrap(),
        ];
        assert!(check_unique(&twice, "--ulimit").is_err());
        assert!(check_unique(&twice[..1], "--ulimit").is_ok());
    }
}
