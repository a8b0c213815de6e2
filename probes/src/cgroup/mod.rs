//! Cgroup probes: limits the kernel enforces, and the cgroup namespace.

pub mod cgroup_cpu_quota;
pub mod cgroup_cpuset;
pub mod cgroup_memory_oom;
pub mod cgroup_ns;
pub mod cgroup_pids;
