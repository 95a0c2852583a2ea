//! Wall-clock timestamps for log lines, in UTC, without a date crate: the civil-from-days
//! conversion (Howard Hinnant's algorithm) is a dozen lines.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Date and time of day in UTC.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    millis: u32,
}

fn civil(t: SystemTime) -> Civil {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil { year, month, day, hour: rem / 3600, min: rem / 60 % 60, sec: rem % 60, millis: d.subsec_millis() }
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `10/Oct/2000:13:55:36 +0000`, the Common Log Format's time (always UTC).
pub(crate) fn write_clf(out: &mut String, t: SystemTime) {
    let c = civil(t);
    let m = MONTHS[(c.month - 1) as usize];
    let _ = write!(out, "{:02}/{m}/{}:{:02}:{:02}:{:02} +0000", c.day, c.year, c.hour, c.min, c.sec);
}

/// `2000-10-10T13:55:36.123Z` (RFC 3339, UTC, milliseconds).
pub fn write_iso(out: &mut String, t: SystemTime) {
    let c = civil(t);
    let _ = write!(
        out,
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.min, c.sec, c.millis
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        // 2000-10-10T13:55:36.5Z, and a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(971_186_136_500);
        let (mut a, mut b) = (String::new(), String::new());
        write_clf(&mut a, t);
        write_iso(&mut b, t);
        assert_eq!((a.as_str(), b.as_str()), ("10/Oct/2000:13:55:36 +0000", "2000-10-10T13:55:36.500Z"));
        let mut c = String::new();
        write_iso(&mut c, UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(c, "2000-02-29T00:00:00.000Z");
    }
}
