//! Prints where each of a few container starts spent its time, phase by phase.
//!
//! `cargo run --release -p benches --example timeline [RUNS [PAUSE_MS
//! [VARIANT]]]` (as root), VARIANT being one of the criterion benchmark's
//! (`plus_memory_cpu_limits` by default). A pause before each start shows what a start costs on a quiet
//! machine, where the kernel's deferred work has caught up.

use benches::{Fixture, Variant};
use runtime::Phase;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("RUNS must be a number"))
        .unwrap_or(5);
    let pause = std::time::Duration::from_millis(
        std::env::args()
            .nth(2)
            .map(|n| n.parse().expect("PAUSE_MS must be a number"))
            .unwrap_or(0),
    );
    let fixture = Fixture::new();
    let variant = match std::env::args().nth(3) {
        Some(name) => *Variant::ALL
            .iter()
            .find(|v| v.name() == name)
            .unwrap_or_else(|| {
                panic!(
                    "VARIANT {name:?} is not one of {:?}",
                    Variant::ALL.map(|v| v.name())
                )
            }),
        None => Variant::Limits,
    };
    let mut spec = fixture.spec(variant);
    spec.split_init_phases = true;
    print!("{:>8}", "total");
    for phase in Phase::ALL {
        print!("{:>10}", phase.name());
    }
    println!("   (µs)");
    for _ in 0..runs {
        std::thread::sleep(pause);
        let timeline = fixture.run(&spec).timeline;
        print!("{:>8}", timeline.total().as_micros());
        for phase in Phase::ALL {
            print!("{:>10}", timeline.spent(phase).as_micros());
        }
        println!();
    }
}
