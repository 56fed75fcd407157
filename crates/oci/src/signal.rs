//! The signal that stops a container: CRI `stop_signal` when set, else the image's
//! `StopSignal` (`SIGQUIT`, `QUIT`, `3`, `SIGRTMIN+3`…), else SIGTERM. Numbers are Linux's
//! on x86 and arm (SIGRTMIN is 34 as glibc and Go programs see it, SIGRTMAX 64).

use cri_api::v1;

use crate::{ImageView, SpecError};

const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Standard signals by name (without `SIG`); aliases after their canonical name.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// A stop signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(i32);

impl StopSignal {
    /// SIGTERM, the default.
    pub const TERM: StopSignal = StopSignal(15);

    /// The signal number, for kill(2).
    pub fn number(self) -> i32 {
        self.0
    }

    /// The signal's name: `SIGTERM`, `SIGRTMIN+3`, `SIGRTMAX-1`.
    pub fn name(self) -> String {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|(_, num)| *num == n) {
            return format!("SIG{name}");
        }
        match n - SIGRTMIN {
            0 => "SIGRTMIN".into(),
            d @ 1..=15 => format!("SIGRTMIN+{d}"),
            _ if n == SIGRTMAX => "SIGRTMAX".into(),
            _ => format!("SIGRTMAX-{}", SIGRTMAX - n),
        }
    }

    /// The CRI enum value (for `ContainerStatus.stop_signal`).
    pub fn to_cri(self) -> v1::Signal {
        let cri_name = format!(
            "SIGNAL_{}",
            self.name().replace('+', "PLUS").replace('-', "MINUS")
        );
        v1::Signal::from_str_name(&cri_name).unwrap_or(v1::Signal::RuntimeDefault)
    }

    /// Parses `SIGQUIT`, `quit`, `3`, `SIGRTMIN+3`, `RTMAX-2`.
    pub fn parse(text: &str) -> Result<StopSignal, SpecError> {
        let fail = || SpecError::StopSignal(text.to_owned());
        let trimmed = text.trim();
        if let Ok(n) = trimmed.parse::<i32>() {
            return if (1..=SIGRTMAX).contains(&n) {
                Ok(StopSignal(n))
            } else {
                Err(fail())
            };
        }
        let upper = trimmed.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
            return Ok(StopSignal(*n));
        }
        let offset = |s: &str| -> Result<i32, SpecError> { s.parse::<i32>().map_err(|_| fail()) };
        let n = if bare == "RTMIN" {
            SIGRTMIN
        } else if bare == "RTMAX" {
            SIGRTMAX
        } else if let Some(d) = bare.strip_prefix("RTMIN+") {
            SIGRTMIN + offset(d)?
        } else if let Some(d) = bare.strip_prefix("RTMAX-") {
            SIGRTMAX - offset(d)?
        } else {
            return Err(fail());
        };
        if (SIGRTMIN..=SIGRTMAX).contains(&n) {
            Ok(StopSignal(n))
        } else {
            Err(fail())
        }
    }

    fn from_cri(value: i32) -> Result<Option<StopSignal>, SpecError> {
        let signal = v1::Signal::try_from(value).map_err(|_| SpecError::UnknownEnum {
            field: "stop_signal",
            value,
        })?;
        if signal == v1::Signal::RuntimeDefault {
            return Ok(None);
        }
        let name = signal.as_str_name().trim_start_matches("SIGNAL_");
        StopSignal::parse(&name.replace("PLUS", "+").replace("MINUS", "-")).map(Some)
    }
}

/// The container's stop signal. Never fails, since stopping must work: an unknown CRI
/// value or an image `StopSignal` that is not a signal falls back to SIGTERM (logged).
pub fn stop_signal(container: &v1::ContainerConfig, image: &ImageView) -> StopSignal {
    match try_stop_signal(container, image) {
        Ok(signal) => signal,
        Err(err) => {
            tracing::warn!(error = %err, "using SIGTERM to stop the container");
            StopSignal::TERM
        }
    }
}

/// The container's stop signal, or why the configured one is not a signal.
pub fn try_stop_signal(
    container: &v1::ContainerConfig,
    image: &ImageView,
) -> Result<StopSignal, SpecError> {
    if let Some(signal) = StopSignal::from_cri(container.stop_signal)? {
        return Ok(signal);
    }
    match image.stop_signal()? {
        Some(text) => StopSignal::parse(text),
        None => Ok(StopSignal::TERM),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parse_forms() {
        for (text, n) in [
            ("SIGQUIT", 3),
            ("quit", 3),
            ("3", 3),
            ("SIGTERM", 15),
            ("SIGKILL", 9),
            ("sigusr1", 10),
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("RTMAX-2", 62),
            ("SIGRTMAX", 64),
            ("SIGWINCH", 28),
        ] {
            assert_eq!(StopSignal::parse(text).unwrap().number(), n, "{text}");
        }
        for bad in ["", "SIGFOO", "0", "65", "-1", "SIGRTMIN+40", "RTMAX-x"] {
            assert!(
                matches!(StopSignal::parse(bad), Err(SpecError::StopSignal(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_cri_values_round_trip() {
        for signal in [
            v1::Signal::Sigquit,
            v1::Signal::Sigterm,
            v1::Signal::Sigrtmin,
            v1::Signal::Sigrtminplus3,
            v1::Signal::Sigrtmaxminus1,
            v1::Signal::Sigrtmax,
            v1::Signal::Sigkill,
            v1::Signal::Sigusr2,
        ] {
            let stop = StopSignal::from_cri(signal as i32).unwrap().unwrap();
            assert_eq!(stop.to_cri(), signal, "{}", stop.name());
        }
        assert_eq!(StopSignal::parse("37").unwrap().name(), "SIGRTMIN+3");
        assert_eq!(StopSignal::parse("63").unwrap().name(), "SIGRTMAX-1");
        assert_eq!(StopSignal::parse("6").unwrap().name(), "SIGABRT");
    }

    #[test]
    fn precedence() {
        let quit = json!({"config": {"StopSignal": "SIGQUIT"}});
        let none = json!({"config": {}});
        let image = |c| ImageView {
            config: c,
            image_ref: "",
        };
        let bogus = json!({"config": {"StopSignal": "SIGBOGUS"}});
        let mut config = v1::ContainerConfig::default();
        assert_eq!(stop_signal(&config, &image(&none)), StopSignal::TERM);
        assert_eq!(stop_signal(&config, &image(&quit)).number(), 3);
        assert!(matches!(
            try_stop_signal(&config, &image(&bogus)),
            Err(SpecError::StopSignal(_))
        ));
        assert_eq!(stop_signal(&config, &image(&bogus)), StopSignal::TERM);
        config.stop_signal = v1::Signal::Sigint as i32;
        assert_eq!(stop_signal(&config, &image(&quit)).number(), 2);
        config.stop_signal = 999;
        assert!(matches!(
            try_stop_signal(&config, &image(&quit)),
            Err(SpecError::UnknownEnum { .. })
        ));
        assert_eq!(stop_signal(&config, &image(&quit)), StopSignal::TERM);
    }
}
