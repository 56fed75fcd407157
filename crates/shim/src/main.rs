//! `berth-shim`: the per-container monitor. Everything lives in [`berth_shim::server`].

fn main() {
    std::process::exit(berth_shim::server::main());
}
