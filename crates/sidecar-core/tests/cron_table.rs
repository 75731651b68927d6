//! `PCAP_CRON_EXP` against the next five runs of each expression.
//!
//! How the expected times were obtained: by hand, not with the crate under test, from
//! - robfig/cron v3's documentation (the original sidecar's parser, through gocron v2):
//!   optional seconds field, descriptors (`@yearly` = `0 0 0 1 1 *`, `@monthly` =
//!   `0 0 0 1 * *`, `@weekly` = `0 0 0 * * 0`, `@daily`/`@midnight` = `0 0 0 * * *`,
//!   `@hourly` = `0 0 * * * *`), `@every <Go duration>` (the previous run plus the delay,
//!   rounded down to the second), `CRON_TZ=`/`TZ=` prefixes;
//! - crontab(5) for day-of-month OR day-of-week when both are restricted;
//! - Debian's cron(8) for daylight-saving changes: a job at a fixed time that was skipped runs
//!   right after the change (03:00 local time), a fixed-time job in the repeated hour is not
//!   re-run, jobs with `*` in the hour or minute follow the new wall clock (so a skipped hour
//!   has no runs and a repeated one has two sets). Here robfig differs (it skips the first and
//!   repeats the second); the sidecar deliberately follows cron(8).
//!
//! Weekdays were checked with GNU `date -d`; transitions in 2026: America/Los_Angeles
//! 8 March 02:00 PST → 03:00 PDT and 1 November 02:00 PDT → 01:00 PST; Europe/Berlin
//! 29 March 02:00 CET → 03:00 CEST and 25 October 03:00 CEST → 02:00 CET.
//!
//! Each run is searched from the previous one, as tcpdumpw does. Times are RFC 3339 with the
//! local offset, which also shows on which side of a transition a run falls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use sidecar_core::schedule::CronSchedule;

struct Case {
    expression: &'static str,
    /// `PCAP_TIMEZONE`.
    zone: &'static str,
    /// Searches start strictly after this time.
    after: &'static str,
    next: [&'static str; 5],
}

const CASES: &[Case] = &[
    Case {
        expression: "*/5 * * * *",
        zone: "UTC",
        after: "2026-03-04T10:02:00Z",
        next: [
            "2026-03-04T10:05:00Z",
            "2026-03-04T10:10:00Z",
            "2026-03-04T10:15:00Z",
            "2026-03-04T10:20:00Z",
            "2026-03-04T10:25:00Z",
        ],
    },
    // Six fields: seconds first.
    Case {
        expression: "*/20 * * * * *",
        zone: "UTC",
        after: "2026-03-04T10:00:50Z",
        next: [
            "2026-03-04T10:01:00Z",
            "2026-03-04T10:01:20Z",
            "2026-03-04T10:01:40Z",
            "2026-03-04T10:02:00Z",
            "2026-03-04T10:02:20Z",
        ],
    },
    // The example: the 1st, the 15th (a Sunday) and every Monday.
    Case {
        expression: "0 0 1,15 * 1",
        zone: "UTC",
        after: "2026-03-02T00:00:00Z",
        next: [
            "2026-03-09T00:00:00Z",
            "2026-03-15T00:00:00Z",
            "2026-03-16T00:00:00Z",
            "2026-03-23T00:00:00Z",
            "2026-03-30T00:00:00Z",
        ],
    },
    // The 13th or a Friday; crossing into April shows the 1st is not special.
    Case {
        expression: "0 12 13 * 5",
        zone: "UTC",
        after: "2026-03-14T00:00:00Z",
        next: [
            "2026-03-20T12:00:00Z",
            "2026-03-27T12:00:00Z",
            "2026-04-03T12:00:00Z",
            "2026-04-10T12:00:00Z",
            "2026-04-13T12:00:00Z",
        ],
    },
    // Day-of-month unrestricted: day-of-week alone decides (starting on a Saturday).
    Case {
        expression: "0 9 * * 1-5",
        zone: "UTC",
        after: "2026-03-07T12:00:00Z",
        next: [
            "2026-03-09T09:00:00Z",
            "2026-03-10T09:00:00Z",
            "2026-03-11T09:00:00Z",
            "2026-03-12T09:00:00Z",
            "2026-03-13T09:00:00Z",
        ],
    },
    // Day-of-week unrestricted: day-of-month alone decides.
    Case {
        expression: "30 8 1 * *",
        zone: "UTC",
        after: "2026-01-15T00:00:00Z",
        next: [
            "2026-02-01T08:30:00Z",
            "2026-03-01T08:30:00Z",
            "2026-04-01T08:30:00Z",
            "2026-05-01T08:30:00Z",
            "2026-06-01T08:30:00Z",
        ],
    },
    // 7 is Sunday, as 0.
    Case {
        expression: "0 6 * * 7",
        zone: "UTC",
        after: "2026-03-04T00:00:00Z",
        next: [
            "2026-03-08T06:00:00Z",
            "2026-03-15T06:00:00Z",
            "2026-03-22T06:00:00Z",
            "2026-03-29T06:00:00Z",
            "2026-04-05T06:00:00Z",
        ],
    },
    // Month and day names.
    Case {
        expression: "0 22 * JAN,JUL SAT",
        zone: "UTC",
        after: "2026-06-01T00:00:00Z",
        next: [
            "2026-07-04T22:00:00Z",
            "2026-07-11T22:00:00Z",
            "2026-07-18T22:00:00Z",
            "2026-07-25T22:00:00Z",
            "2027-01-02T22:00:00Z",
        ],
    },
    Case {
        expression: "0 0 0 1 1,4,7,10 *",
        zone: "UTC",
        after: "2026-02-15T00:00:00Z",
        next: [
            "2026-04-01T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "2027-04-01T00:00:00Z",
        ],
    },
    // Only months with a 31st.
    Case {
        expression: "0 0 31 * *",
        zone: "UTC",
        after: "2026-01-01T00:00:00Z",
        next: [
            "2026-01-31T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z",
        ],
    },
    Case {
        expression: "0 0 29 2 *",
        zone: "UTC",
        after: "2026-01-01T00:00:00Z",
        next: [
            "2028-02-29T00:00:00Z",
            "2032-02-29T00:00:00Z",
            "2036-02-29T00:00:00Z",
            "2040-02-29T00:00:00Z",
            "2044-02-29T00:00:00Z",
        ],
    },
    Case {
        expression: "@hourly",
        zone: "UTC",
        after: "2026-03-04T10:15:30Z",
        next: [
            "2026-03-04T11:00:00Z",
            "2026-03-04T12:00:00Z",
            "2026-03-04T13:00:00Z",
            "2026-03-04T14:00:00Z",
            "2026-03-04T15:00:00Z",
        ],
    },
    Case {
        expression: "@daily",
        zone: "UTC",
        after: "2026-12-30T12:00:00Z",
        next: [
            "2026-12-31T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "2027-01-02T00:00:00Z",
            "2027-01-03T00:00:00Z",
            "2027-01-04T00:00:00Z",
        ],
    },
    Case {
        expression: "@midnight",
        zone: "UTC",
        after: "2026-02-27T00:00:00Z",
        next: [
            "2026-02-28T00:00:00Z",
            "2026-03-01T00:00:00Z",
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            "2026-03-04T00:00:00Z",
        ],
    },
    // Sundays at midnight, from a Wednesday.
    Case {
        expression: "@weekly",
        zone: "UTC",
        after: "2026-03-04T00:00:00Z",
        next: [
            "2026-03-08T00:00:00Z",
            "2026-03-15T00:00:00Z",
            "2026-03-22T00:00:00Z",
            "2026-03-29T00:00:00Z",
            "2026-04-05T00:00:00Z",
        ],
    },
    Case {
        expression: "@monthly",
        zone: "UTC",
        after: "2026-01-31T23:59:59Z",
        next: [
            "2026-02-01T00:00:00Z",
            "2026-03-01T00:00:00Z",
            "2026-04-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "2026-06-01T00:00:00Z",
        ],
    },
    Case {
        expression: "@yearly",
        zone: "UTC",
        after: "2026-06-01T00:00:00Z",
        next: [
            "2027-01-01T00:00:00Z",
            "2028-01-01T00:00:00Z",
            "2029-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
        ],
    },
    // Strictly after: the start itself is not a run.
    Case {
        expression: "@annually",
        zone: "UTC",
        after: "2026-01-01T00:00:00Z",
        next: [
            "2027-01-01T00:00:00Z",
            "2028-01-01T00:00:00Z",
            "2029-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
        ],
    },
    // The fraction of a second of the start is dropped (robfig's ConstantDelaySchedule).
    Case {
        expression: "@every 10m",
        zone: "UTC",
        after: "2026-03-04T10:02:03.5Z",
        next: [
            "2026-03-04T10:12:03Z",
            "2026-03-04T10:22:03Z",
            "2026-03-04T10:32:03Z",
            "2026-03-04T10:42:03Z",
            "2026-03-04T10:52:03Z",
        ],
    },
    Case {
        expression: "@every 1h30m",
        zone: "UTC",
        after: "2026-03-04T23:00:00Z",
        next: [
            "2026-03-05T00:30:00Z",
            "2026-03-05T02:00:00Z",
            "2026-03-05T03:30:00Z",
            "2026-03-05T05:00:00Z",
            "2026-03-05T06:30:00Z",
        ],
    },
    // @every counts real time: across the repeated hour the wall clock goes back.
    Case {
        expression: "@every 30m",
        zone: "America/Los_Angeles",
        after: "2026-11-01T00:45:00-07:00",
        next: [
            "2026-11-01T01:15:00-07:00",
            "2026-11-01T01:45:00-07:00",
            "2026-11-01T01:15:00-08:00",
            "2026-11-01T01:45:00-08:00",
            "2026-11-01T02:15:00-08:00",
        ],
    },
    // CRON_TZ overrides PCAP_TIMEZONE (UTC here); New York moves to EDT on 8 March.
    Case {
        expression: "CRON_TZ=America/New_York 0 9 * * *",
        zone: "UTC",
        after: "2026-03-06T00:00:00Z",
        next: [
            "2026-03-06T14:00:00Z",
            "2026-03-07T14:00:00Z",
            "2026-03-08T13:00:00Z",
            "2026-03-09T13:00:00Z",
            "2026-03-10T13:00:00Z",
        ],
    },
    // TZ= works the same, and overrides another zone too; 02:30 on 29 March does not exist in
    // Berlin, so that run happens right after the gap.
    Case {
        expression: "TZ=Europe/Berlin 30 2 * * *",
        zone: "America/Los_Angeles",
        after: "2026-03-27T00:00:00Z",
        next: [
            "2026-03-27T02:30:00+01:00",
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ],
    },
    // Spring forward, fixed time in the skipped hour: runs at 03:00 PDT that day.
    Case {
        expression: "30 2 * * *",
        zone: "America/Los_Angeles",
        after: "2026-03-06T12:00:00-08:00",
        next: [
            "2026-03-07T02:30:00-08:00",
            "2026-03-08T03:00:00-07:00",
            "2026-03-09T02:30:00-07:00",
            "2026-03-10T02:30:00-07:00",
            "2026-03-11T02:30:00-07:00",
        ],
    },
    // Spring forward, wildcard hour: 02:00 does not exist and is not made up.
    Case {
        expression: "0 * * * *",
        zone: "America/Los_Angeles",
        after: "2026-03-08T00:30:00-08:00",
        next: [
            "2026-03-08T01:00:00-08:00",
            "2026-03-08T03:00:00-07:00",
            "2026-03-08T04:00:00-07:00",
            "2026-03-08T05:00:00-07:00",
            "2026-03-08T06:00:00-07:00",
        ],
    },
    // Fall back, fixed time in the repeated hour: once, in PDT.
    Case {
        expression: "30 1 * * *",
        zone: "America/Los_Angeles",
        after: "2026-10-31T00:00:00-07:00",
        next: [
            "2026-10-31T01:30:00-07:00",
            "2026-11-01T01:30:00-07:00",
            "2026-11-02T01:30:00-08:00",
            "2026-11-03T01:30:00-08:00",
            "2026-11-04T01:30:00-08:00",
        ],
    },
    // Fall back, wildcard: both passes of the repeated hour run.
    Case {
        expression: "*/30 * * * *",
        zone: "America/Los_Angeles",
        after: "2026-11-01T00:50:00-07:00",
        next: [
            "2026-11-01T01:00:00-07:00",
            "2026-11-01T01:30:00-07:00",
            "2026-11-01T01:00:00-08:00",
            "2026-11-01T01:30:00-08:00",
            "2026-11-01T02:00:00-08:00",
        ],
    },
    // Berlin spring forward, wildcard hour: no 02:15 that night.
    Case {
        expression: "15 * * * *",
        zone: "Europe/Berlin",
        after: "2026-03-29T00:00:00+01:00",
        next: [
            "2026-03-29T00:15:00+01:00",
            "2026-03-29T01:15:00+01:00",
            "2026-03-29T03:15:00+02:00",
            "2026-03-29T04:15:00+02:00",
            "2026-03-29T05:15:00+02:00",
        ],
    },
    // Berlin fall back, fixed 02:00 in the repeated hour: once, in CEST.
    Case {
        expression: "0 2 * * *",
        zone: "Europe/Berlin",
        after: "2026-10-23T12:00:00+02:00",
        next: [
            "2026-10-24T02:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-26T02:00:00+01:00",
            "2026-10-27T02:00:00+01:00",
            "2026-10-28T02:00:00+01:00",
        ],
    },
    // Berlin, 6 fields, every 20 minutes at second 30 through the repeated hour.
    Case {
        expression: "30 */20 2 * * *",
        zone: "Europe/Berlin",
        after: "2026-10-25T02:30:00+02:00",
        next: [
            "2026-10-25T02:40:30+02:00",
            "2026-10-25T02:00:30+01:00",
            "2026-10-25T02:20:30+01:00",
            "2026-10-25T02:40:30+01:00",
            "2026-10-26T02:00:30+01:00",
        ],
    },
];

fn time(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn next_five_runs_of_each_expression() {
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for case in CASES {
        let zone: Tz = case.zone.parse().expect("a zone");
        let schedule = CronSchedule::parse(case.expression)
            .unwrap_or_else(|e| panic!("{}: {e}", case.expression));
        let mut at = time(case.after).with_timezone(&zone);
        let mut got = Vec::new();
        for _ in 0..5 {
            match schedule.next_after(&at) {
                Some(next) => {
                    got.push(next.fixed_offset());
                    at = next;
                }
                None => break,
            }
        }
        let want: Vec<_> = case.next.iter().map(|t| time(t)).collect();
        // Compare the instants and show local times, so a run on the wrong side of a
        // transition reads clearly.
        if got != want {
            failures.push(format!(
                "{} ({}): got {:?}, want {:?}",
                case.expression,
                case.zone,
                got.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>(),
                case.next
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_the_original_rejected_is_still_rejected() {
    for bad in [
        "* * * *",
        "* * * * * * *",
        "61 * * * *",
        "0 9 * * 8",
        "@fortnightly",
        "@every",
        "@every 10",
        "@every ten minutes",
        "@hourly 5",
        "CRON_TZ=Mars/Olympus 0 9 * * *",
        "CRON_TZ=America/New_York",
    ] {
        assert!(CronSchedule::parse(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn the_zone_prefix_is_kept_and_reported() {
    let s = CronSchedule::parse("CRON_TZ=America/New_York 0 9 * * *").expect("valid");
    assert_eq!(s.expression(), "CRON_TZ=America/New_York 0 0 9 * * *");
    assert_eq!(s.timezone(), Some(chrono_tz::America::New_York));
    // The normalised text parses back to the same schedule (pcap-init passes it on).
    assert_eq!(CronSchedule::parse(s.expression()).expect("valid"), s);
    assert_eq!(
        CronSchedule::parse("@every 10m").expect("valid").timezone(),
        None
    );
}
