//! Container start latency through the library API: whole starts for each
//! variant, each phase of the goal configuration, and the phases that can run
//! on their own.
//!
//! Run as root: `cargo bench -p benches`. Every iteration starts `/bin/true`
//! in a fresh container, waits for it and tears it down.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{Fixture, Variant, CGROUP_PARENT};
use criterion::{criterion_group, criterion_main, Criterion};
use nix::sched::CloneFlags;
use runtime::cgroup::{ContainerCgroup, Mode};
use runtime::Phase;

/// One start, whole, for each variant.
fn start(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("start");
    for variant in Variant::ALL {
        let spec = fixture.spec(variant);
        group.bench_function(variant.name(), |b| b.iter(|| fixture.run(&spec)));
    }
    group.finish();
}

/// The goal configuration, with the time of only one phase counted per
/// benchmark. Init reports when its setup ends, so `rootfs` and `exec` are
/// told apart.
fn phases(c: &mut Criterion, fixture: &Fixture) {
    let mut spec = fixture.spec(Variant::Limits);
    spec.split_init_phases = true;
    let mut group = c.benchmark_group("phase");
    group.measurement_time(Duration::from_secs(3));
    for phase in Phase::ALL {
        group.bench_function(phase.name(), |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| fixture.run(&spec).timeline.spent(phase))
                    .sum()
            })
        });
    }
    group.finish();
}

/// Phases that make sense alone: the cgroup with its limits written and
/// removed, and a bare clone into the same new namespaces (the kernel's cost
/// of making them), without the rest of a container around either.
fn alone(c: &mut Criterion, fixture: &Fixture) {
    let limits = fixture.spec(Variant::Limits).limits;
    let mode = Mode::detect().expect("detect the cgroup mode");
    let mut group = c.benchmark_group("alone");
    let mut n = 0u64;
    group.bench_function("cgroup_create_limit_remove", |b| {
        b.iter(|| {
            n += 1;
            let cgroup =
                ContainerCgroup::create(mode, CGROUP_PARENT, &format!("alone-{n}"), &limits)
                    .expect("create a cgroup");
            cgroup.destroy().expect("remove the cgroup");
        })
    });
    let namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWCGROUP;
    group.bench_function("clone_namespaces_and_reap", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                clone_and_reap(black_box(namespaces));
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// Clones a child into `flags`' new namespaces that exits at once, and reaps it.
fn clone_and_reap(flags: CloneFlags) {
    let mut stack = vec![0u8; 64 * 1024];
    // SAFETY: the child only calls _exit, which is async-signal-safe.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(|| libc::_exit(0)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .expect("clone into new namespaces");
    nix::sys::wait::waitpid(pid, None).expect("reap the clone");
}

fn all(c: &mut Criterion) {
    let fixture = Fixture::new();
    start(c, &fixture);
    phases(c, &fixture);
    alone(c, &fixture);
}

criterion_group!(benches, all);
criterion_main!(benches);
