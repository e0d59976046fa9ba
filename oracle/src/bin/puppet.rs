//! `rmaplab-puppet CPU`: the live-kernel backend's puppet as a binary of
//! its own (`rmaplab::kernel::puppet`). The `rmaplab` binary serves as a
//! puppet too (`rmaplab __puppet CPU`); this one exists because it can be
//! linked statically, which makes forks and exits cheaper:
//! `cargo rustc --release -p rmaplab --bin rmaplab-puppet -- -C target-feature=+crt-static`.

fn main() {
    rmaplab::kernel::puppet::main()
}
