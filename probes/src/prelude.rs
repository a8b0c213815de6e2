//! What every probe file uses: the declaration, the lab, the helper's side,
//! and the verdict's parts. `use crate::prelude::*;` at the top of a probe.

pub use serde::{Deserialize, Serialize};

pub use crate::counters::Counters;
pub use crate::evidence;
pub use crate::inside::Helper;
pub use crate::lab::{Lab, LabError, OrBroken, Role};
pub use crate::mutation::{Fault, Mutation};
pub use crate::probe::{Needs, Probe};
pub use crate::verdict::{Evidence, Finding, Judgement, Property};
pub use anyhow::Context;
