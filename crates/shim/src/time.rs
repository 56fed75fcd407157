//! Wall-clock time as RFC 3339 with nanoseconds in UTC (`2026-11-23T05:05:47.123456789Z`),
//! formatted by hand: fixed width (30 bytes), no allocation, no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a formatted timestamp.
pub(crate) const RFC3339_NANO_LEN: usize = 30;

/// Seconds and nanoseconds since the Unix epoch (negative seconds before 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub(crate) fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            // A clock before 1970: clamp rather than emit a nonsense date.
            Err(_) => Timestamp { secs: 0, nanos: 0 },
        }
    }

    /// Nanoseconds since the epoch (saturating).
    pub(crate) fn unix_nanos(self) -> i64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` to `out`.
    pub(crate) fn write_rfc3339_nano(self, out: &mut Vec<u8>) {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; RFC3339_NANO_LEN];
        put(&mut buf[0..4], y.clamp(0, 9999) as u64);
        buf[4] = b'-';
        put(&mut buf[5..7], u64::from(m));
        buf[7] = b'-';
        put(&mut buf[8..10], u64::from(d));
        buf[10] = b'T';
        put(&mut buf[11..13], (sod / 3600) as u64);
        buf[13] = b':';
        put(&mut buf[14..16], (sod / 60 % 60) as u64);
        buf[16] = b':';
        put(&mut buf[17..19], (sod % 60) as u64);
        buf[19] = b'.';
        put(&mut buf[20..29], u64::from(self.nanos));
        buf[29] = b'Z';
        out.extend_from_slice(&buf);
    }
}

/// Zero-padded decimal of `v` filling all of `dst`.
fn put(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses what [`Timestamp::write_rfc3339_nano`] writes (test helper, also used by the
/// integration tests through the log parser there).
#[cfg(test)]
pub(crate) fn parse_rfc3339_nano(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != RFC3339_NANO_LEN
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[29] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, ns) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..29)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // days_from_civil
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Timestamp {
        secs: days * 86_400 + h * 3600 + mi * 60 + se,
        nanos: ns as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: i64, nanos: u32) -> String {
        let mut v = Vec::new();
        Timestamp { secs, nanos }.write_rfc3339_nano(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(fmt(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            fmt(1_795_410_347, 123_456_789),
            "2026-11-23T05:05:47.123456789Z"
        );
        assert_eq!(
            fmt(4_102_444_799, 999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn round_trips() {
        let mut secs = 0i64;
        while secs < 5_000_000_000 {
            let t = Timestamp {
                secs,
                nanos: (secs % 1_000_000_000) as u32,
            };
            assert_eq!(parse_rfc3339_nano(&fmt(t.secs, t.nanos)), Some(t), "{secs}");
            secs += 86_400 * 17 + 3_607;
        }
        let now = Timestamp::now();
        let s = fmt(now.secs, now.nanos);
        assert_eq!(s.len(), RFC3339_NANO_LEN);
        assert_eq!(parse_rfc3339_nano(&s), Some(now));
        assert!(now.unix_nanos() > 1_700_000_000_000_000_000);
    }
}
