//! Which user namespace a container asks for, and the id maps it gets, as
//! plain values; `crate::userns` claims and writes them.

use serde::{Deserialize, Serialize};

/// Which user namespace a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UserNs {
    /// The host's: uid 0 inside is uid 0 outside.
    #[default]
    Host,
    /// A new one, with root mapped to a block of unprivileged ids.
    Auto,
}

/// `count` consecutive host ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

impl IdRange {
    pub fn end(self) -> u64 {
        self.start as u64 + self.count as u64
    }

    pub fn overlaps(self, other: IdRange) -> bool {
        (self.start as u64) < other.end() && (other.start as u64) < self.end()
    }
}

/// A container's ids 0..count stand for host uids `uid..` and gids `gid..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdMap {
    pub fn uids(self) -> IdRange {
        IdRange {
            start: self.uid,
            count: self.count,
        }
    }

    pub fn gids(self) -> IdRange {
        IdRange {
            start: self.gid,
            count: self.count,
        }
    }
}

/// One line of `/proc/PID/uid_map` (or `gid_map`): `size` ids from
/// `container` inside stand for `size` ids from `host` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl Mapping {
    /// The host id that `id` inside stands for, if the maps cover it.
    pub fn host_of(maps: &[Mapping], id: u32) -> Option<u32> {
        maps.iter().find_map(|m| {
            (id >= m.container && (id - m.container) < m.size).then(|| m.host + (id - m.container))
        })
    }
}
