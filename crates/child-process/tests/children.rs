//! Real child processes under supervision: restarts, giving up, stopping, process groups.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use child_process::{ChildSpec, Event, Exit, RestartPolicy, State, Stream, Supervised};
use nix::sys::signal::Signal;

fn quick(max_failures: u32) -> RestartPolicy {
    RestartPolicy {
        max_failures,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        stable_after: Duration::from_secs(60),
        give_up_on_code: Some(2),
    }
}

#[test]
fn exit_code_2_is_given_up_at_once() {
    let mut child = Supervised::start(sh("misconfigured", "exit 2"), quick(5), None).unwrap();
    let events = poll_events(&mut child, |e| !e.is_empty());
    assert_eq!(
        events,
        vec![Event::GaveUp {
            exit: Exit::Code(2)
        }]
    );
    assert_eq!(child.starts(), 1);
}

#[test]
fn a_done_on_success_child_that_exits_0_is_finished_not_restarted() {
    let mut child =
        Supervised::start(sh("counted", "exit 0").done_on_success(), quick(5), None).unwrap();
    let events = poll_events(&mut child, |e| !e.is_empty());
    assert_eq!(
        events,
        vec![Event::Finished {
            exit: Exit::Code(0)
        }]
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(child.poll(), None, "never restarted");
    assert!(matches!(child.state(), State::Stopped { .. }));
    assert_eq!(child.starts(), 1);
    // A failure is still restarted.
    let mut failing =
        Supervised::start(sh("counted", "exit 1").done_on_success(), quick(5), None).unwrap();
    let events = poll_events(&mut failing, |e| {
        e.iter().any(|e| matches!(e, Event::Restarted { .. }))
    });
    assert!(matches!(events[0], Event::Exited { .. }), "{events:?}");
    failing.stop(Duration::from_secs(1));
}

fn sh(name: &str, script: &str) -> ChildSpec {
    ChildSpec::new(name, "/bin/sh").args(["-c", script])
}

/// Polls until `until` says stop, collecting events; panics after 20 s.
fn poll_events(child: &mut Supervised, until: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = Vec::new();
    while !until(&events) {
        assert!(Instant::now() < deadline, "events so far: {events:?}");
        if let Some(event) = child.poll() {
            events.push(event);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    events
}

#[test]
fn a_failing_child_is_restarted_then_given_up_with_its_output() {
    let (tap, lines) = mpsc::channel();
    let mut child = Supervised::start(
        sh(
            "failing",
            "echo starting; echo 'boom: no such device' >&2; exit 3",
        ),
        quick(2),
        Some(tap),
    )
    .unwrap();
    let events = poll_events(&mut child, |e| {
        matches!(e.last(), Some(Event::GaveUp { .. }))
    });
    let exits = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Exited {
                    exit: Exit::Code(3),
                    ..
                }
            )
        })
        .count();
    let restarts = events
        .iter()
        .filter(|e| matches!(e, Event::Restarted { .. }))
        .count();
    assert_eq!((exits, restarts), (2, 2), "{events:?}");
    assert_eq!(child.starts(), 3);
    assert_eq!(
        child.state(),
        &State::GaveUp {
            last: Exit::Code(3)
        }
    );
    // Give the reader threads a moment to finish the last run's lines.
    std::thread::sleep(Duration::from_millis(100));
    let seen: Vec<_> = lines.try_iter().collect();
    assert!(seen
        .iter()
        .any(|l| l.stream == Stream::Stderr && l.text == "boom: no such device"));
    assert_eq!(
        seen.iter().filter(|l| l.text == "starting").count(),
        3,
        "one line per run"
    );
    assert!(child
        .recent_output()
        .contains(&"boom: no such device".to_string()));
}

#[test]
fn backoff_grows_between_restarts() {
    let mut child = Supervised::start(sh("grow", "exit 1"), quick(4), None).unwrap();
    let events = poll_events(&mut child, |e| {
        matches!(e.last(), Some(Event::GaveUp { .. }))
    });
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::Exited { restart_in, .. } => Some(*restart_in),
            _ => None,
        })
        .collect();
    assert_eq!(
        delays,
        vec![
            Duration::from_millis(20),
            Duration::from_millis(40),
            Duration::from_millis(80),
            Duration::from_millis(100)
        ]
    );
}

#[test]
fn a_run_that_lasted_resets_the_failure_count() {
    let policy = RestartPolicy {
        stable_after: Duration::from_millis(150),
        ..quick(1)
    };
    let mut child = Supervised::start(sh("stable", "sleep 0.3; exit 1"), policy, None).unwrap();
    let events = poll_events(&mut child, |e| {
        e.iter()
            .filter(|x| matches!(x, Event::Restarted { .. }))
            .count()
            >= 3
            || matches!(e.last(), Some(Event::GaveUp { .. }))
    });
    assert!(
        !events.iter().any(|e| matches!(e, Event::GaveUp { .. })),
        "{events:?}"
    );
    child.stop(Duration::from_secs(5));
}

#[test]
fn stop_is_sigterm_first() {
    let mut child = Supervised::start(sh("sleeper", "exec sleep 60"), quick(3), None).unwrap();
    let started = Instant::now();
    let exit = child.stop(Duration::from_secs(10));
    assert_eq!(exit, Exit::Signal(Signal::SIGTERM as i32));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(child.state(), State::Stopped { .. }));
    assert_eq!(child.poll(), None, "a stopped child is not restarted");
}

#[test]
fn stop_escalates_to_sigkill_after_the_grace_period() {
    // Ignored signals stay ignored across exec, so sleep ignores SIGTERM too.
    let mut child = Supervised::start(
        sh("stubborn", "trap '' TERM; exec sleep 60"),
        quick(3),
        None,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let exit = child.stop(Duration::from_millis(300));
    assert_eq!(exit, Exit::Signal(Signal::SIGKILL as i32));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// A supervised shell that starts a background `sleep` in its group; returns the sleep's pid.
fn leader_with_helper(name: &str) -> (Supervised, u32) {
    let (tap, lines) = mpsc::channel();
    let child =
        Supervised::start(sh(name, "sleep 60 & echo $!; wait"), quick(3), Some(tap)).unwrap();
    let line = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    let helper: u32 = line.text.trim().parse().unwrap();
    assert!(sidecar_core::readiness::process_alive(helper));
    (child, helper)
}

fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sidecar_core::readiness::process_alive(pid) {
        assert!(Instant::now() < deadline, "{what} {pid} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_whole_process_group_is_stopped() {
    let (mut child, grandchild) = leader_with_helper("parent");
    child.stop(Duration::from_secs(5));
    wait_gone(grandchild, "grandchild");
}

/// A child killed with SIGKILL (so it could not clean up) leaves nothing of its group behind,
/// and its restart does not run beside its old helpers. (A regression: `sleep` processes of
/// killed test programs outlived the test suite.)
#[test]
fn a_child_that_dies_takes_its_process_group_with_it() {
    let (mut child, helper) = leader_with_helper("leader");
    let State::Running { pid, .. } = child.state().clone() else {
        panic!("not running: {:?}", child.state());
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let events = poll_events(&mut child, |e| !e.is_empty());
    assert!(matches!(events[0], Event::Exited { .. }), "{events:?}");
    wait_gone(helper, "the helper of a dead leader");
    child.stop(Duration::from_secs(5));
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let error = Supervised::start(
        ChildSpec::new("ghost", "/nonexistent/tcpdump").args(["-i", "eth0"]),
        quick(1),
        None,
    )
    .err()
    .expect("spawn fails");
    let text = error.to_string();
    assert!(
        text.contains("ghost") && text.contains("/nonexistent/tcpdump -i eth0"),
        "{text}"
    );
}

#[test]
fn stop_all_shares_one_grace_period_and_kills_only_the_stubborn() {
    let mut polite = Supervised::start(
        sh("polite", "trap 'exit 7' TERM; while :; do sleep 0.05; done"),
        quick(0),
        None,
    )
    .unwrap();
    let mut stubborn = Supervised::start(
        sh("stubborn", "trap '' TERM; while :; do sleep 0.05; done"),
        quick(0),
        None,
    )
    .unwrap();
    let mut other_stubborn = Supervised::start(
        sh("stubborn2", "trap '' TERM; while :; do sleep 0.05; done"),
        quick(0),
        None,
    )
    .unwrap();
    // Let the shells install their traps.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let exits = child_process::stop_all(
        &mut [&mut polite, &mut stubborn, &mut other_stubborn],
        Duration::from_millis(800),
    );
    // One shared grace, not one per child.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(exits[0], Exit::Code(7), "SIGTERM first: {exits:?}");
    assert_eq!(exits[1], Exit::Signal(Signal::SIGKILL as i32), "{exits:?}");
    assert_eq!(exits[2], Exit::Signal(Signal::SIGKILL as i32), "{exits:?}");
    for child in [&polite, &stubborn, &other_stubborn] {
        assert!(matches!(child.state(), State::Stopped { .. }));
    }
}
