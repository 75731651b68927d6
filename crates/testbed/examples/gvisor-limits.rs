//! `gvisor-limits COMMAND [ARGS…]`: runs a command under gVisor's capture limits (see
//! `testbed::gvisor`): no packet rings, no kernel socket filters. For reproducing Cloud Run
//! gen1 by hand, e.g. `gvisor-limits tcpdump -i eth0` or `gvisor-limits tcpdumpw`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: gvisor-limits COMMAND [ARGS...]");
        std::process::exit(2);
    };
    let mut command = Command::new(program);
    command.args(args);
    testbed::gvisor::restrict_like_gvisor(&mut command).expect("seccomp filter");
    let error = command.exec();
    eprintln!("gvisor-limits: {error}");
    std::process::exit(127);
}
