//! SIGTERM / SIGINT as a value: threads wait on it with a timeout instead of polling a flag.
//!
//! [`Shutdown::install`] starts one thread that turns the signals into [`Shutdown::trigger`];
//! tests call `trigger` directly. The number of signals received is kept so a supervisor can
//! escalate on the second one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Default)]
struct State {
    requested: Mutex<bool>,
    /// When the first request arrived: the shutdown deadline counts from there.
    requested_at: Mutex<Option<Instant>>,
    changed: Condvar,
    signals: AtomicUsize,
}

/// A shared shutdown request.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    state: Arc<State>,
}

impl Shutdown {
    /// A shutdown that only [`Shutdown::trigger`] can request.
    pub fn new() -> Self {
        Self::default()
    }

    /// A shutdown requested by SIGTERM or SIGINT (and by [`Shutdown::trigger`]).
    pub fn install() -> std::io::Result<Self> {
        let shutdown = Self::new();
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        let handle = shutdown.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    handle.state.signals.fetch_add(1, Ordering::SeqCst);
                    handle.trigger();
                }
            })?;
        Ok(shutdown)
    }

    /// Requests shutdown and wakes every waiter.
    pub fn trigger(&self) {
        let mut requested = self
            .state
            .requested
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *requested = true;
        self.state
            .requested_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_or_insert_with(Instant::now);
        self.state.changed.notify_all();
    }

    /// When shutdown was first requested, if it was.
    pub fn requested_at(&self) -> Option<Instant> {
        *self
            .state
            .requested_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Has shutdown been requested?
    pub fn is_requested(&self) -> bool {
        *self
            .state
            .requested
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many termination signals arrived.
    pub fn signals_received(&self) -> usize {
        self.state.signals.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout`; returns whether shutdown has been requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requested = self
            .state
            .requested
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while !*requested {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            requested = match self.state.changed.wait_timeout(requested, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_a_waiter_early() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.wait_timeout(Duration::from_millis(10)));
        let other = shutdown.clone();
        let started = Instant::now();
        let waiter = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        shutdown.trigger();
        assert!(waiter.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(shutdown.is_requested());
    }
}
