//! Cron expressions as users write them (crontab's 5 fields, or 6 with seconds first).
//!
//! The `cron` crate speaks Quartz dialect, where days of the week run 1–7 from Sunday; crontab
//! users write 0–7 with 0 and 7 both Sunday. [`CronSchedule::parse`] therefore rewrites the
//! day-of-week field into day names before handing the expression to the crate, so `1-5`
//! means Monday to Friday exactly as in crontab(5).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone};

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    schedule: cron::Schedule,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl CronSchedule {
    /// Parses a 5-field (minute hour day-of-month month day-of-week) or 6-field (seconds
    /// first) expression.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let mut fields: Vec<&str> = expression.split_whitespace().collect();
        match fields.len() {
            5 => fields.insert(0, "0"),
            6 => {}
            n => {
                return Err(format!(
                    "has {n} fields; expected 5 (crontab) or 6 (with seconds first)"
                ))
            }
        }
        let dow = crontab_days_to_names(fields[5])?;
        let quartz = format!(
            "{} {} {} {} {} {}",
            fields[0], fields[1], fields[2], fields[3], fields[4], dow
        );
        let schedule = cron::Schedule::from_str(&quartz).map_err(|e| e.to_string())?;
        Ok(CronSchedule {
            expression: fields.join(" "),
            schedule,
        })
    }

    /// The expression, normalised to 6 fields.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first run strictly after `after`, in `after`'s time zone.
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>> {
        self.schedule.after(after).next()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// Rewrites a crontab day-of-week field (`*`, `?`, numbers 0–7, names, lists, ranges, steps)
/// into a list of day names.
fn crontab_days_to_names(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step in day-of-week '{item}'"))?,
            ),
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day_number(a)?, day_number(b)?)
        } else {
            let day = day_number(range)?;
            (day, if step > 1 { 6 } else { day })
        };
        if start > end {
            return Err(format!("day-of-week range '{range}' ends before it starts"));
        }
        for day in (start..=end).step_by(step) {
            days[day % 7] = true;
        }
    }
    let names: Vec<&str> = (0..7).filter(|d| days[*d]).map(|d| DAY_NAMES[d]).collect();
    Ok(names.join(","))
}

/// A crontab day: 0–7 (0 and 7 are Sunday) or a three-letter name. Sunday as 7 is kept as 7
/// so that ranges like `5-7` work; callers reduce modulo 7.
fn day_number(text: &str) -> Result<usize, String> {
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day-of-week {n} is outside 0..=7"))
        };
    }
    DAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .ok_or_else(|| format!("'{text}' is not a day of the week"))
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
