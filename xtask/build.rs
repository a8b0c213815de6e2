//! Records the architecture xtask is built for, so the helper targets the same.
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    println!("cargo:rustc-env=XTASK_ARCH={arch}");
}
