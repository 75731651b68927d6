//! When captures run: continuously, once for `PCAP_TIMEOUT_SECS`, or on the `PCAP_CRON_EXP`
//! schedule in `PCAP_TIMEZONE` (each run lasting `PCAP_TIMEOUT_SECS`, 0 = until SIGTERM).
//!
//! [`Runs`] is a pure state machine over wall-clock time: the daemon asks it what is due
//! ([`Runs::due`]) and how long it may sleep ([`Runs::until_next`]), so the overlap rule is
//! unit-tested without waiting. A cron run that comes due while the previous one is still
//! running is skipped (the original's singleton mode), and reported as such.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sidecar_core::schedule::CronSchedule;

/// How captures are scheduled.
#[derive(Debug, Clone)]
pub enum Mode {
    /// From start-up until SIGTERM.
    Continuous,
    /// From start-up for this long, then no more capture (the process stays up).
    OneShot(Duration),
    /// On a schedule.
    Cron {
        /// The expression (boxed: it is large and the other variants are small).
        schedule: Box<CronSchedule>,
        /// Its time zone.
        timezone: Tz,
        /// Length of each run; `None` = until SIGTERM.
        timeout: Option<Duration>,
    },
}

impl Mode {
    /// The mode the configuration asks for.
    pub fn from_config(config: &sidecar_core::config::Config) -> Mode {
        let timeout = (config.timeout_secs > 0).then(|| Duration::from_secs(config.timeout_secs));
        match (&config.cron, config.use_cron) {
            (Some(schedule), true) => Mode::Cron {
                schedule: Box::new(schedule.clone()),
                timezone: config.timezone,
                timeout,
            },
            _ => match timeout {
                Some(timeout) => Mode::OneShot(timeout),
                None => Mode::Continuous,
            },
        }
    }
}

/// Something the daemon must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start run `number` (1-based); it ends at `ends` (`None`: never on its own).
    Start {
        /// Run number.
        number: u32,
        /// When it ends.
        ends: Option<DateTime<Utc>>,
    },
    /// Stop run `number`: its time is up.
    Stop {
        /// Run number.
        number: u32,
    },
    /// A cron run due at `due` was skipped because run `running` is still going.
    Skip {
        /// When the skipped run was due.
        due: DateTime<Utc>,
        /// The run still going.
        running: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Active {
    number: u32,
    ends: Option<DateTime<Utc>>,
}

/// The scheduling state.
#[derive(Debug, Clone)]
pub struct Runs {
    mode: Mode,
    active: Option<Active>,
    next: Option<DateTime<Utc>>,
    started: u32,
}

fn after(at: DateTime<Utc>, length: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(length)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Runs {
    /// Arms the schedule at `now`.
    pub fn new(mode: Mode, now: DateTime<Utc>) -> Runs {
        let mut runs = Runs {
            mode,
            active: None,
            next: None,
            started: 0,
        };
        runs.next = runs.next_cron_after(now);
        runs
    }

    fn next_cron_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.mode {
            Mode::Cron {
                schedule, timezone, ..
            } => schedule
                .next_after(&now.with_timezone(timezone))
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// The next scheduled start (cron only).
    pub fn next_run(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    /// The run in progress, if any.
    pub fn active(&self) -> Option<u32> {
        self.active.map(|a| a.number)
    }

    /// How many runs were started.
    pub fn started(&self) -> u32 {
        self.started
    }

    /// Is this a cron schedule?
    pub fn is_cron(&self) -> bool {
        matches!(self.mode, Mode::Cron { .. })
    }

    /// Will no run ever start again (a finished one-shot)?
    pub fn finished(&self) -> bool {
        match self.mode {
            Mode::Continuous | Mode::OneShot(_) => self.started > 0 && self.active.is_none(),
            Mode::Cron { .. } => self.next.is_none() && self.active.is_none(),
        }
    }

    fn start(&mut self, now: DateTime<Utc>, length: Option<Duration>) -> Action {
        self.started += 1;
        let ends = length.map(|l| after(now, l));
        self.active = Some(Active {
            number: self.started,
            ends,
        });
        Action::Start {
            number: self.started,
            ends,
        }
    }

    /// The next thing due at `now`; call again until `None`.
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<Action> {
        if let Some(active) = self.active {
            if active.ends.is_some_and(|ends| ends <= now) {
                self.active = None;
                return Some(Action::Stop {
                    number: active.number,
                });
            }
        }
        match self.mode.clone() {
            Mode::Continuous => (self.started == 0).then(|| self.start(now, None)),
            Mode::OneShot(length) => (self.started == 0).then(|| self.start(now, Some(length))),
            Mode::Cron { timeout, .. } => {
                let due = self.next.filter(|next| *next <= now)?;
                self.next = self.next_cron_after(now);
                match self.active {
                    Some(active) => Some(Action::Skip {
                        due,
                        running: active.number,
                    }),
                    None => Some(self.start(now, timeout)),
                }
            }
        }
    }

    /// Ends the run in progress before its time (every interface reached
    /// `PCAP_PACKET_COUNT`): its number, if one was running. A continuous capture is then
    /// finished like a one-shot; cron starts the next run on schedule.
    pub fn end_active(&mut self) -> Option<u32> {
        self.active.take().map(|a| a.number)
    }

    /// How long until something may be due (for the daemon's sleep); `None`: nothing ever.
    pub fn until_next(&self, now: DateTime<Utc>) -> Option<Duration> {
        let end = self.active.and_then(|a| a.ends);
        [end, self.next]
            .into_iter()
            .flatten()
            .min()
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, second).unwrap()
    }

    fn cron(expression: &str, timeout: Option<u64>) -> Mode {
        Mode::Cron {
            schedule: Box::new(CronSchedule::parse(expression).unwrap()),
            timezone: chrono_tz::UTC,
            timeout: timeout.map(Duration::from_secs),
        }
    }

    #[test]
    fn continuous_starts_once_and_never_stops() {
        let mut runs = Runs::new(Mode::Continuous, at(0));
        assert_eq!(
            runs.due(at(0)),
            Some(Action::Start {
                number: 1,
                ends: None
            })
        );
        assert_eq!(runs.due(at(50)), None);
        assert_eq!(runs.until_next(at(50)), None);
        assert!(!runs.finished());
    }

    #[test]
    fn one_shot_stops_after_the_timeout_and_is_finished() {
        let mut runs = Runs::new(Mode::OneShot(Duration::from_secs(5)), at(0));
        assert_eq!(
            runs.due(at(0)),
            Some(Action::Start {
                number: 1,
                ends: Some(at(5))
            })
        );
        assert_eq!(runs.until_next(at(1)), Some(Duration::from_secs(4)));
        assert_eq!(runs.due(at(4)), None);
        assert_eq!(runs.due(at(5)), Some(Action::Stop { number: 1 }));
        assert_eq!(runs.due(at(30)), None);
        assert!(runs.finished());
    }

    #[test]
    fn cron_runs_in_windows_and_skips_overlaps() {
        let mut runs = Runs::new(cron("*/4 * * * * *", Some(2)), at(1));
        assert_eq!(runs.next_run(), Some(at(4)));
        assert_eq!(runs.due(at(3)), None);
        assert_eq!(
            runs.due(at(4)),
            Some(Action::Start {
                number: 1,
                ends: Some(at(6))
            })
        );
        assert_eq!(runs.next_run(), Some(at(8)));
        assert_eq!(runs.due(at(6)), Some(Action::Stop { number: 1 }));
        assert_eq!(runs.due(at(6)), None);
        assert!(matches!(
            runs.due(at(8)),
            Some(Action::Start { number: 2, .. })
        ));
        // Runs longer than the period: the next one is skipped while this one runs.
        let mut long = Runs::new(cron("*/4 * * * * *", Some(6)), at(1));
        assert!(matches!(
            long.due(at(4)),
            Some(Action::Start { number: 1, .. })
        ));
        assert_eq!(
            long.due(at(8)),
            Some(Action::Skip {
                due: at(8),
                running: 1
            })
        );
        assert_eq!(long.due(at(10)), Some(Action::Stop { number: 1 }));
        assert!(matches!(
            long.due(at(12)),
            Some(Action::Start { number: 2, .. })
        ));
    }

    #[test]
    fn cron_without_timeout_runs_once_and_skips_the_rest() {
        let mut runs = Runs::new(cron("*/4 * * * * *", None), at(1));
        assert!(matches!(
            runs.due(at(4)),
            Some(Action::Start { ends: None, .. })
        ));
        assert!(matches!(runs.due(at(8)), Some(Action::Skip { .. })));
        assert_eq!(runs.active(), Some(1));
    }

    #[test]
    fn cron_honours_the_time_zone() {
        // 09:00 in Los Angeles is 17:00 UTC in November (PST).
        let mode = Mode::Cron {
            schedule: Box::new(CronSchedule::parse("0 9 * * *").unwrap()),
            timezone: "America/Los_Angeles".parse().unwrap(),
            timeout: None,
        };
        let runs = Runs::new(mode, at(0));
        assert_eq!(
            runs.next_run(),
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 17, 0, 0).unwrap())
        );
    }
}
