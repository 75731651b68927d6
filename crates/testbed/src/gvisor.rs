//! gVisor's capture limits, reproduced on a normal kernel with seccomp: the tests of the
//! ring-less capture path (Cloud Run gen1) run the capture under this filter.
//!
//! gVisor implements `AF_PACKET` sockets but refuses `PACKET_RX_RING`, `PACKET_TX_RING` and
//! `PACKET_VERSION` (no `TPACKET` rings) and `SO_ATTACH_FILTER`, all with `ENOPROTOOPT`.
//! [`restrict_like_gvisor`] makes exactly those `setsockopt` calls fail the same way in a
//! child process (and everything it executes); every other system call is allowed.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::{Error, Result};

/// `SOL_PACKET`.
pub const SOL_PACKET: u64 = 263;
/// `PACKET_RX_RING`, `PACKET_VERSION`, `PACKET_TX_RING`.
pub const REFUSED_PACKET_OPTIONS: [u64; 3] = [5, 10, 13];
/// `SOL_SOCKET`.
pub const SOL_SOCKET: u64 = 1;
/// `SO_ATTACH_FILTER`.
pub const SO_ATTACH_FILTER: u64 = 26;

fn seccomp_error(error: impl std::fmt::Display) -> Error {
    Error::io(
        "building the gVisor-like seccomp filter",
        io::Error::other(error.to_string()),
    )
}

/// The seccomp program: `setsockopt(fd, SOL_PACKET, PACKET_RX_RING | PACKET_VERSION |
/// PACKET_TX_RING, …)` and `setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, …)` fail with
/// `ENOPROTOOPT`; everything else is allowed.
pub fn gvisor_filter() -> Result<BpfProgram> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(seccomp_error)?;
    let rule = |level: u64, option: u64| -> Result<SeccompRule> {
        SeccompRule::new(vec![
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, level)
                .map_err(seccomp_error)?,
            SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, option)
                .map_err(seccomp_error)?,
        ])
        .map_err(seccomp_error)
    };
    let mut rules = Vec::new();
    for option in REFUSED_PACKET_OPTIONS {
        rules.push(rule(SOL_PACKET, option)?);
    }
    rules.push(rule(SOL_SOCKET, SO_ATTACH_FILTER)?);
    let filter = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_setsockopt, rules)]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOPROTOOPT as u32),
        arch,
    )
    .map_err(seccomp_error)?;
    filter.try_into().map_err(seccomp_error)
}

/// Makes `command`'s process (and whatever it executes: seccomp filters are inherited) see
/// gVisor's capture limits.
pub fn restrict_like_gvisor(command: &mut Command) -> Result<()> {
    let program = gvisor_filter()?;
    // SAFETY: the hook runs in the forked child before exec; `apply_filter` only issues the
    // prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2) system calls on a program built before the
    // fork, allocating nothing.
    unsafe {
        command.pre_exec(move || seccompiler::apply_filter(&program).map_err(io::Error::other));
    }
    Ok(())
}
