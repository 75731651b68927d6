//! Cron expressions as the original sidecar accepted them (robfig/cron's parser, used by
//! gocron v2): crontab's 5 fields or 6 with seconds first, the descriptors `@yearly`,
//! `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, `@every <duration>`,
//! and a `CRON_TZ=<zone>` or `TZ=<zone>` prefix that overrides `PCAP_TIMEZONE`.
//!
//! Field matching is done by `croner`, which follows crontab(5): days of the week are 0–7
//! (0 and 7 are Sunday), and when both day-of-month and day-of-week are restricted a day
//! matching either runs (`0 0 1,15 * 1` runs on the 1st, the 15th and every Monday).
//! Daylight-saving transitions follow Vixie cron (Debian's cron(8)) rather than robfig: a
//! fixed-time run that falls into the skipped hour runs right after the gap (robfig silently
//! skips it), and one in the repeated hour runs once (robfig runs it twice); runs with `*` or
//! a step in the seconds, minutes or hours field follow the wall clock through both.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Timelike};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: Option<chrono_tz::Tz>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Fields(Box<Cron>),
    /// `@every`: a fixed delay in whole seconds, at least one (as robfig rounds it).
    Every(Duration),
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl CronSchedule {
    /// Parses a 5-field (minute hour day-of-month month day-of-week) or 6-field (seconds
    /// first) expression, or a descriptor, optionally after a `CRON_TZ=`/`TZ=` prefix.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let expression = expression.trim();
        let (prefix, timezone, body) = match split_zone_prefix(expression)? {
            Some((prefix, zone, body)) => (Some(prefix), Some(zone), body),
            None => (None, None, expression),
        };
        let (normalised, kind) = if let Some(descriptor) = body.strip_prefix('@') {
            parse_descriptor(descriptor)?
        } else {
            let mut fields: Vec<&str> = body.split_whitespace().collect();
            match fields.len() {
                5 => fields.insert(0, "0"),
                6 => {}
                n => {
                    return Err(format!(
                        "has {n} fields; expected 5 (crontab) or 6 (with seconds first)"
                    ))
                }
            }
            let fields = fields.join(" ");
            (
                fields.clone(),
                Kind::Fields(Box::new(parse_fields(&fields)?)),
            )
        };
        let expression = match (prefix, timezone) {
            (Some(prefix), Some(zone)) => format!("{prefix}={} {normalised}", zone.name()),
            _ => normalised,
        };
        Ok(CronSchedule {
            expression,
            timezone,
            kind,
        })
    }

    /// The expression, normalised: 5 fields become 6 (seconds `0` first), descriptors and the
    /// time-zone prefix are kept.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone of a `CRON_TZ=`/`TZ=` prefix, which overrides `PCAP_TIMEZONE`.
    pub fn timezone(&self) -> Option<chrono_tz::Tz> {
        self.timezone
    }

    /// The first run strictly after `after`, in `after`'s time zone (or the prefix's zone
    /// when the expression has one; the result is still given in `after`'s zone).
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>> {
        match &self.kind {
            Kind::Every(delay) => {
                // robfig: the next run is `delay` later, rounded down to the whole second.
                // Subtracting keeps to real time (`with_nanosecond` fails in a repeated hour).
                let fraction = chrono::Duration::nanoseconds(i64::from(after.nanosecond()));
                Some(after.clone() - fraction + chrono::Duration::from_std(*delay).ok()?)
            }
            Kind::Fields(cron) => match self.timezone {
                Some(zone) => {
                    let next = cron
                        .find_next_occurrence(&after.with_timezone(&zone), false)
                        .ok()?;
                    Some(next.with_timezone(&after.timezone()))
                }
                None => cron.find_next_occurrence(after, false).ok(),
            },
        }
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// `CRON_TZ=Zone rest` or `TZ=Zone rest` → (prefix, zone, rest).
fn split_zone_prefix(expression: &str) -> Result<Option<(&str, chrono_tz::Tz, &str)>, String> {
    for prefix in ["CRON_TZ", "TZ"] {
        let Some(rest) = expression
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('='))
        else {
            continue;
        };
        let (zone, body) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{prefix}= must be followed by a zone and an expression"))?;
        let zone = zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("'{zone}' in {prefix}= is not an IANA time zone"))?;
        return Ok(Some((prefix, zone, body.trim_start())));
    }
    Ok(None)
}

/// robfig's descriptors, spelled as the 6-field expressions its documentation gives.
fn parse_descriptor(descriptor: &str) -> Result<(String, Kind), String> {
    let (name, argument) = match descriptor.split_once(char::is_whitespace) {
        Some((name, argument)) => (name, argument.trim()),
        None => (descriptor, ""),
    };
    let name = name.to_ascii_lowercase();
    if name == "every" {
        let delay = parse_go_duration(argument)
            .map_err(|e| format!("@every needs a duration like 10m or 1h30m: {e}"))?;
        // robfig rounds a delay down to whole seconds and runs at least every second.
        let delay = Duration::from_secs(delay.as_secs().max(1));
        return Ok((format!("@every {argument}"), Kind::Every(delay)));
    }
    if !argument.is_empty() {
        return Err(format!("@{name} takes no argument"));
    }
    let fields = match name.as_str() {
        "yearly" | "annually" => "0 0 0 1 1 *",
        "monthly" => "0 0 0 1 * *",
        "weekly" => "0 0 0 * * 0",
        "daily" | "midnight" => "0 0 0 * * *",
        "hourly" => "0 0 * * * *",
        _ => {
            return Err(format!(
                "@{name} is not a descriptor; expected @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly or @every <duration>"
            ))
        }
    };
    Ok((
        format!("@{name}"),
        Kind::Fields(Box::new(parse_fields(fields)?)),
    ))
}

fn parse_fields(six_fields: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .build()
        .parse(six_fields)
        .map_err(|e| e.to_string())
}

/// Go's `time.ParseDuration` syntax, which robfig's `@every` uses: one or more decimal
/// numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5h`.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("no duration given".into());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("'{text}' has a number without a unit"))?;
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("'{text}' is not a duration"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit '{unit}' in '{text}'")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if !(total.is_finite() && total < 1e10) {
        return Err(format!("'{text}' is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Utc, Weekday};

    #[test]
    fn five_and_six_fields() {
        let five = CronSchedule::parse("*/5 * * * *").unwrap();
        assert_eq!(five.expression(), "0 */5 * * * *");
        let six = CronSchedule::parse("*/5 * * * * *").unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 2).unwrap();
        assert_eq!(six.next_after(&start).unwrap().second(), 5);
        assert_eq!(five.next_after(&start).unwrap().minute(), 5);
        assert!(CronSchedule::parse("* * * *").is_err());
        assert!(CronSchedule::parse("61 * * * *").is_err());
        assert!(CronSchedule::parse("not a cron").is_err());
    }

    #[test]
    fn day_of_week_follows_crontab_numbering() {
        // 2026-03-07 is a Saturday.
        let saturday = Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap();
        let weekdays = CronSchedule::parse("0 9 * * 1-5").unwrap();
        let next = weekdays.next_after(&saturday).unwrap();
        assert_eq!(next.weekday(), Weekday::Mon);
        let sunday_zero = CronSchedule::parse("0 9 * * 0").unwrap();
        assert_eq!(
            sunday_zero.next_after(&saturday).unwrap().weekday(),
            Weekday::Sun
        );
        let sunday_seven = CronSchedule::parse("0 9 * * 7").unwrap();
        assert_eq!(
            sunday_seven.next_after(&saturday).unwrap().weekday(),
            Weekday::Sun
        );
        let weekend = CronSchedule::parse("0 9 * * 6-7").unwrap();
        assert_eq!(
            weekend.next_after(&saturday).unwrap().weekday(),
            Weekday::Sun
        );
        assert!(CronSchedule::parse("0 9 * * 8").is_err());
        assert!(CronSchedule::parse("0 9 * * 5-1").is_err());
    }

    #[test]
    fn time_zone_is_respected() {
        let tz: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
        let daily = CronSchedule::parse("0 9 * * *").unwrap();
        let now = tz.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        let next = daily.next_after(&now).unwrap();
        assert_eq!((next.day(), next.hour()), (5, 9));
    }
}
