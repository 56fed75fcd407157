//! `berth-shim`: the per-container monitor (everything lives in [`berth_shim::server`]); with
//! `pod-init` the init process of a pod's shared PID namespace ([`berth_shim::podinit`]); with
//! `ns-holder` the creator of a pod's user namespace ([`berth_shim::nsholder`]).

fn main() {
    let mode = std::env::args_os().nth(1);
    let code = match mode.as_ref().and_then(|m| m.to_str()) {
        // PID 1 of a pod's shared PID namespace.
        Some("pod-init") => berth_shim::podinit::main(),
        Some("ns-holder") => berth_shim::nsholder::main(),
        _ => berth_shim::server::main(),
    };
    std::process::exit(code);
}
