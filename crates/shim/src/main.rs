//! `berth-shim`: the per-container monitor (everything lives in [`berth_shim::server`]), and
//! with `pod-init` the init process of a pod's shared PID namespace ([`berth_shim::podinit`]).

fn main() {
    // `berth-shim pod-init`: PID 1 of a pod's shared PID namespace.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "pod-init")
    {
        std::process::exit(berth_shim::podinit::main());
    }
    std::process::exit(berth_shim::server::main());
}
