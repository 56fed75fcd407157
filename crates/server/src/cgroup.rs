//! The cgroup driver berthd runs with: the one the configuration selects, and the value
//! RuntimeConfig reports to kubelet. Everything else about cgroups is `berth-cgroups`.

use berth_config::CgroupDriverSetting;
use cri_api::v1;

pub use berth_cgroups::{CgroupDriver, CgroupMode, CGROUP_ROOT};

/// The cgroup driver `runtime.cgroup_driver` selected (`auto` resolved at startup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedCgroupDriver(CgroupDriver);

impl SelectedCgroupDriver {
    /// The configured driver, or for `auto` systemd when it runs as init, else cgroupfs.
    pub fn resolve(setting: CgroupDriverSetting) -> SelectedCgroupDriver {
        SelectedCgroupDriver(CgroupDriver::resolve(requested(setting)))
    }

    /// The driver.
    pub fn driver(self) -> CgroupDriver {
        self.0
    }

    /// Lower-case name, as in the configuration file.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The CRI enum value.
    pub fn to_cri(self) -> v1::CgroupDriver {
        match self.0 {
            CgroupDriver::Systemd => v1::CgroupDriver::Systemd,
            CgroupDriver::Cgroupfs => v1::CgroupDriver::Cgroupfs,
        }
    }
}

/// The driver a setting asks for; `None` for `auto`.
fn requested(setting: CgroupDriverSetting) -> Option<CgroupDriver> {
    match setting {
        CgroupDriverSetting::Systemd => Some(CgroupDriver::Systemd),
        CgroupDriverSetting::Cgroupfs => Some(CgroupDriver::Cgroupfs),
        CgroupDriverSetting::Auto => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_their_driver_and_auto_detects() {
        use CgroupDriverSetting as S;
        assert_eq!(requested(S::Systemd), Some(CgroupDriver::Systemd));
        assert_eq!(requested(S::Cgroupfs), Some(CgroupDriver::Cgroupfs));
        assert_eq!(requested(S::Auto), None);
        assert_eq!(
            SelectedCgroupDriver::resolve(S::Cgroupfs).driver(),
            CgroupDriver::Cgroupfs
        );
        assert_eq!(SelectedCgroupDriver::resolve(S::Systemd).name(), "systemd");
    }

    #[test]
    fn cri_values_match_the_proto() {
        assert_eq!(
            SelectedCgroupDriver(CgroupDriver::Systemd).to_cri() as i32,
            0
        );
        assert_eq!(
            SelectedCgroupDriver(CgroupDriver::Cgroupfs).to_cri() as i32,
            1
        );
    }
}
