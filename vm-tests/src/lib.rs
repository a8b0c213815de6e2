//! The VM matrix: which kernels and cgroup modes are tested, what the guest
//! reports, and how the host assembles and renders the kernel × mode ×
//! probe matrix. The guest's PID 1 is the `mydocker-vm-init` binary.

pub mod agreement;
pub mod cell;
pub mod config;
pub mod diff;
pub mod kselftest;
pub mod matrix;
pub mod render;

pub use cell::{CellReport, CgroupMode, GuestReport};
pub use matrix::Matrix;
