//! `leftover-check` names what a command left behind, removes it, and fails; a clean
//! command passes with its own exit code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn leftover_check(script: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leftover-check"))
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One test: leftover-check compares machine-wide state (namespaces), so two of them running
/// at once would see each other's.
#[test]
fn leftovers_fail_the_run_and_a_clean_command_keeps_its_exit_code() {
    let name = format!("lc-test-{}", std::process::id());
    // The subshell exits at once: its sleep is an orphan, as a killed test program's would be.
    let (code, stderr) = leftover_check(&format!("(sleep 1234 &); ip netns add {name}; exit 0"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("sleep 1234"), "{stderr}");
    assert!(
        stderr.contains(&format!("network namespace {name}")),
        "{stderr}"
    );
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&name),
        "the namespace was removed"
    );

    let (code, stderr) = leftover_check("exit 0");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("nothing left behind"), "{stderr}");
    // An orphan that ends by itself is reaped along the way, not reported.
    let (code, stderr) = leftover_check("(sleep 0.1 &); sleep 0.5; exit 3");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("nothing left behind"), "{stderr}");
}
