//! One cgroup: where its files are in each hierarchy a host may mount, and the counters berth
//! reads there.
//!
//! Readers try every hierarchy a counter can be in, in a fixed order, and take the first file
//! that exists: the shim does not detect the layout, and a cgroup's files are only where its
//! host mounts them. The files outlive the cgroup's processes (runc removes the cgroup on
//! `runc delete`), so they can be read after the init was reaped.

use std::path::{Path, PathBuf};

use Hierarchy::{HybridUnified, Unified, V1};

/// A hierarchy the cgroup's files may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// A cgroup v1 hierarchy, by its directory name (`memory`, `cpuacct`, `cpu,cpuacct`), on
    /// legacy and hybrid hosts: `<root>/<hierarchy>/<rel>`.
    V1(&'static str),
    /// The cgroup v2 hierarchy of a hybrid host: `<root>/unified/<rel>`.
    HybridUnified,
    /// The cgroup v2 hierarchy of a unified host: `<root>/<rel>`.
    Unified,
}

/// CPU time in v1: `cpuacct.usage` (nanoseconds), in whichever of these is mounted.
const CPU_V1: [Hierarchy; 2] = [V1("cpuacct"), V1("cpu,cpuacct")];

/// The files that may hold the OOM-kill counter (`oom_kill`), in the order checked.
const OOM_COUNTERS: [(Hierarchy, &str); 3] = [
    (V1("memory"), "memory.oom_control"),
    (HybridUnified, "memory.events"),
    (Unified, "memory.events"),
];

/// v1 reports "no limit" as the largest page-aligned value (9223372036854771712 on 4 KiB
/// pages); anything from 2^62 bytes on is taken as no limit.
const V1_NO_LIMIT: u64 = 1 << 62;

/// Memory a cgroup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    /// All memory charged to the cgroup, page cache included, in bytes.
    pub usage_bytes: u64,
    /// Usage less the inactive file cache (what the kubelet evicts on), in bytes.
    pub working_set_bytes: u64,
    /// Anonymous memory and swap cache (v1 `total_rss`, v2 `anon`), in bytes.
    pub rss_bytes: Option<u64>,
    /// Page faults (v1 `total_pgfault`, v2 `pgfault`).
    pub page_faults: Option<u64>,
    /// Major page faults (v1 `total_pgmajfault`, v2 `pgmajfault`).
    pub major_page_faults: Option<u64>,
    /// The memory limit in bytes; None when the cgroup has none.
    pub limit_bytes: Option<u64>,
}

impl MemoryUsage {
    /// Usage from the usage file's value, the `memory.stat` text (keys of `names`) and the
    /// limit file's text.
    fn new(usage_bytes: u64, stat: &str, names: &StatNames, limit: Option<u64>) -> MemoryUsage {
        let inactive_file = keyed_value(stat, names.inactive_file);
        MemoryUsage {
            usage_bytes,
            working_set_bytes: usage_bytes.saturating_sub(inactive_file.unwrap_or(0)),
            rss_bytes: keyed_value(stat, names.rss),
            page_faults: keyed_value(stat, names.page_faults),
            major_page_faults: keyed_value(stat, names.major_page_faults),
            limit_bytes: limit,
        }
    }

    /// Memory left before the limit: the limit less the working set (none without a limit),
    /// as kubelet's summary defines it.
    pub fn available_bytes(&self) -> Option<u64> {
        self.limit_bytes
            .map(|limit| limit.saturating_sub(self.working_set_bytes))
    }
}

/// The `memory.stat` keys of one cgroup version.
struct StatNames {
    inactive_file: &'static str,
    rss: &'static str,
    page_faults: &'static str,
    major_page_faults: &'static str,
}

/// v1's hierarchical totals (the cgroup and its descendants, as runc leaves none below it).
const V1_STAT: StatNames = StatNames {
    inactive_file: "total_inactive_file",
    rss: "total_rss",
    page_faults: "total_pgfault",
    major_page_faults: "total_pgmajfault",
};

const V2_STAT: StatNames = StatNames {
    inactive_file: "inactive_file",
    rss: "anon",
    page_faults: "pgfault",
    major_page_faults: "pgmajfault",
};

/// One line of a pressure file: the share of wall time some (or all) tasks stalled.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    /// Total stall time, in microseconds.
    pub total_us: u64,
    /// Percentage over the last 10, 60 and 300 seconds.
    pub avg10: f64,
    /// See `avg10`.
    pub avg60: f64,
    /// See `avg10`.
    pub avg300: f64,
}

/// A cgroup v2 pressure (PSI) file: `some` and, where the kernel reports it, `full`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    /// Some tasks stalled.
    pub some: PressureLine,
    /// All non-idle tasks stalled at once.
    pub full: Option<PressureLine>,
}

/// The resources the kernel reports pressure for, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PressureKind {
    /// `cpu.pressure`
    Cpu,
    /// `memory.pressure`
    Memory,
    /// `io.pressure`
    Io,
}

/// A cgroup: a root where the hierarchies are mounted and a directory below each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    root: PathBuf,
    rel: PathBuf,
}

impl Cgroup {
    /// The cgroup `rel` (as [`crate::relative_dir`] returns it) under `root`.
    pub fn new(root: impl Into<PathBuf>, rel: impl Into<PathBuf>) -> Cgroup {
        Cgroup {
            root: root.into(),
            rel: rel.into(),
        }
    }

    /// The cgroup a spec's `linux.cgroupsPath` names, under `root`; None if the value cannot
    /// name one.
    pub fn from_spec(root: impl Into<PathBuf>, cgroups_path: &str) -> Option<Cgroup> {
        Some(Cgroup::new(root, crate::relative_dir(cgroups_path)?))
    }

    /// Its path below a hierarchy root.
    pub fn relative(&self) -> &Path {
        &self.rel
    }

    /// Its directory in `hierarchy`.
    pub fn dir(&self, hierarchy: Hierarchy) -> PathBuf {
        match hierarchy {
            V1(name) => self.root.join(name).join(&self.rel),
            HybridUnified => self.root.join("unified").join(&self.rel),
            Unified => self.root.join(&self.rel),
        }
    }

    /// CPU time used, in nanoseconds: v1's `cpuacct.usage`, else `usage_usec` of a unified
    /// host's `cpu.stat`.
    pub fn cpu_usage_nanos(&self) -> Option<u64> {
        CPU_V1
            .iter()
            .find_map(|&h| read_u64(&self.dir(h).join("cpuacct.usage")))
            .or_else(|| {
                keyed_file(&self.dir(Unified).join("cpu.stat"), "usage_usec")
                    .map(|us| us.saturating_mul(1000))
            })
    }

    /// Memory usage and working set (v1's `memory.usage_in_bytes` less `total_inactive_file`,
    /// else a unified host's `memory.current` less `inactive_file`), RSS, page faults and the
    /// limit (`memory.limit_in_bytes`, `memory.max`) from the same hierarchy.
    pub fn memory_usage(&self) -> Option<MemoryUsage> {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        let v1 = self.dir(V1("memory"));
        if let Some(usage) = read_u64(&v1.join("memory.usage_in_bytes")) {
            let limit = read_u64(&v1.join("memory.limit_in_bytes")).filter(|&l| l < V1_NO_LIMIT);
            let stat = read(v1.join("memory.stat"));
            return Some(MemoryUsage::new(usage, &stat, &V1_STAT, limit));
        }
        let v2 = self.dir(Unified);
        let usage = read_u64(&v2.join("memory.current"))?;
        // "max" when unlimited: not a number, so no limit.
        let limit = read_u64(&v2.join("memory.max"));
        let stat = read(v2.join("memory.stat"));
        Some(MemoryUsage::new(usage, &stat, &V2_STAT, limit))
    }

    /// Pressure stall information of `kind`: a unified host's file, else the one in a hybrid
    /// host's v2 hierarchy (where runc puts the cgroup too). None where the kernel has no
    /// PSI or the cgroup is in no v2 hierarchy.
    pub fn pressure(&self, kind: PressureKind) -> Option<Pressure> {
        let file = match kind {
            PressureKind::Cpu => "cpu.pressure",
            PressureKind::Memory => "memory.pressure",
            PressureKind::Io => "io.pressure",
        };
        [Unified, HybridUnified]
            .iter()
            .find_map(|&h| std::fs::read_to_string(self.dir(h).join(file)).ok())
            .and_then(|text| parse_pressure(&text))
    }

    /// The files that may hold the OOM-kill counter, in the order checked: v1's
    /// `memory.oom_control`, `memory.events` of a hybrid host's v2 hierarchy, of a unified
    /// host's.
    pub fn oom_counter_files(&self) -> [PathBuf; 3] {
        OOM_COUNTERS.map(|(h, file)| self.dir(h).join(file))
    }

    /// True if any existing counter file reports an OOM kill (`oom_kill` above zero).
    pub fn oom_killed(&self) -> bool {
        self.oom_counter_files()
            .iter()
            .any(|f| keyed_file(f, "oom_kill").is_some_and(|n| n > 0))
    }
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and the same for `full`.
fn parse_pressure(text: &str) -> Option<Pressure> {
    let line = |prefix: &str| -> Option<PressureLine> {
        let fields = text.lines().find_map(|l| l.strip_prefix(prefix))?;
        let mut out = PressureLine::default();
        for field in fields.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            match key {
                "avg10" => out.avg10 = value.parse().ok()?,
                "avg60" => out.avg60 = value.parse().ok()?,
                "avg300" => out.avg300 = value.parse().ok()?,
                "total" => out.total_us = value.parse().ok()?,
                _ => {}
            }
        }
        Some(out)
    };
    Some(Pressure {
        some: line("some ")?,
        full: line("full "),
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` lines: `memory.stat`, `cpu.stat`,
/// `memory.events`, `memory.oom_control`).
fn keyed_file(path: &Path, key: &str) -> Option<u64> {
    keyed_value(&std::fs::read_to_string(path).ok()?, key)
}

fn keyed_value(contents: &str, key: &str) -> Option<u64> {
    contents.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, contents: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    #[test]
    fn counters_v1_and_v2() {
        let oom_kill = |contents| keyed_value(contents, "oom_kill");
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n";
        let none = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n";
        assert_eq!(oom_kill(v1), Some(2));
        assert_eq!(oom_kill(v2), Some(1));
        assert_eq!(oom_kill(none), Some(0));
        // Old kernels have no oom_kill line; `oom_kill_disable` must not match.
        assert_eq!(oom_kill("oom_kill_disable 1\nunder_oom 0\n"), None);
    }

    #[test]
    fn stat_fields_parse() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "memory.stat",
            "cache 5\ntotal_inactive_file 42\n",
        );
        let stat = dir.path().join("memory.stat");
        assert_eq!(keyed_file(&stat, "total_inactive_file"), Some(42));
        assert_eq!(keyed_file(&stat, "missing"), None);
        assert_eq!(keyed_file(&dir.path().join("absent"), "cache"), None);
    }

    #[test]
    fn directories_per_hierarchy() {
        let c = Cgroup::new("/sys/fs/cgroup", "kubepods.slice/berth-abc.scope");
        assert_eq!(
            c.dir(V1("memory")),
            PathBuf::from("/sys/fs/cgroup/memory/kubepods.slice/berth-abc.scope")
        );
        assert_eq!(
            c.dir(V1("cpu,cpuacct")),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/kubepods.slice/berth-abc.scope")
        );
        assert_eq!(
            c.dir(HybridUnified),
            PathBuf::from("/sys/fs/cgroup/unified/kubepods.slice/berth-abc.scope")
        );
        assert_eq!(
            c.dir(Unified),
            PathBuf::from("/sys/fs/cgroup/kubepods.slice/berth-abc.scope")
        );
        let from_spec = Cgroup::from_spec("/sys/fs/cgroup", "kubepods.slice:berth:abc").unwrap();
        assert_eq!(from_spec, c);
        assert_eq!(
            from_spec.relative(),
            Path::new("kubepods.slice/berth-abc.scope")
        );
        assert!(Cgroup::from_spec("/sys/fs/cgroup", "/a/../..").is_none());
    }

    #[test]
    fn counter_files() {
        let files = Cgroup::new("/sys/fs/cgroup", "a/b").oom_counter_files();
        assert_eq!(
            files,
            [
                PathBuf::from("/sys/fs/cgroup/memory/a/b/memory.oom_control"),
                PathBuf::from("/sys/fs/cgroup/unified/a/b/memory.events"),
                PathBuf::from("/sys/fs/cgroup/a/b/memory.events"),
            ]
        );
    }

    #[test]
    fn pressure_files_parse() {
        let text = "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
        let p = parse_pressure(text).unwrap();
        assert_eq!(
            p.some,
            PressureLine {
                total_us: 12345,
                avg10: 1.5,
                avg60: 0.25,
                avg300: 0.0
            }
        );
        assert_eq!(p.full.unwrap().total_us, 7);
        // cpu.pressure of older kernels has no `full` line.
        let p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert!(p.full.is_none());
        assert!(parse_pressure("").is_none());
        assert!(parse_pressure("some avg10=x total=1\n").is_none());
    }

    #[test]
    fn pressure_is_read_from_the_v2_hierarchies() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup::new(dir.path(), "pod/c1");
        assert!(cg.pressure(PressureKind::Cpu).is_none());
        let hybrid = dir.path().join("unified/pod/c1");
        std::fs::create_dir_all(&hybrid).unwrap();
        std::fs::write(hybrid.join("memory.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=3\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n").unwrap();
        assert_eq!(cg.pressure(PressureKind::Memory).unwrap().some.total_us, 3);
        assert!(cg.pressure(PressureKind::Io).is_none());
    }

    #[test]
    fn reads_whichever_files_exist() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "t/c");
        assert!(!c.oom_killed());
        write(root.path(), "memory/t/c/memory.oom_control", "oom_kill 0\n");
        assert!(!c.oom_killed());
        write(root.path(), "t/c/memory.events", "oom 1\noom_kill 1\n");
        assert!(c.oom_killed());
    }

    #[test]
    fn hybrid_oom_counter_is_in_unified() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "t/c");
        write(
            root.path(),
            "memory/t/c/memory.oom_control",
            "oom_kill_disable 0\n",
        );
        write(
            root.path(),
            "unified/t/c/memory.events",
            "oom 0\noom_kill 0\n",
        );
        assert!(!c.oom_killed());
        write(
            root.path(),
            "unified/t/c/memory.events",
            "oom 1\noom_kill 3\n",
        );
        assert!(c.oom_killed());
    }

    #[test]
    fn v1_usage() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "berth/abc");
        assert_eq!(c.cpu_usage_nanos(), None);
        assert_eq!(c.memory_usage(), None);
        write(root.path(), "cpu,cpuacct/berth/abc/cpuacct.usage", "1234\n");
        assert_eq!(c.cpu_usage_nanos(), Some(1234));
        // The `cpuacct` hierarchy comes first.
        write(root.path(), "cpuacct/berth/abc/cpuacct.usage", "99\n");
        assert_eq!(c.cpu_usage_nanos(), Some(99));
        write(
            root.path(),
            "memory/berth/abc/memory.usage_in_bytes",
            "1000\n",
        );
        assert_eq!(
            c.memory_usage(),
            Some(MemoryUsage {
                usage_bytes: 1000,
                working_set_bytes: 1000,
                ..MemoryUsage::default()
            })
        );
        write(
            root.path(),
            "memory/berth/abc/memory.stat",
            "inactive_file 7\ntotal_inactive_file 300\n",
        );
        assert_eq!(c.memory_usage().unwrap().working_set_bytes, 700);
        // The v1 files win over v2 ones.
        write(root.path(), "berth/abc/memory.current", "5\n");
        assert_eq!(c.memory_usage().unwrap().usage_bytes, 1000);
    }

    #[test]
    fn v2_usage() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "berth/abc");
        write(
            root.path(),
            "berth/abc/cpu.stat",
            "usage_usec 17\nuser_usec 10\n",
        );
        assert_eq!(c.cpu_usage_nanos(), Some(17_000));
        write(root.path(), "berth/abc/memory.current", "2048\n");
        write(
            root.path(),
            "berth/abc/memory.stat",
            "anon 1\ninactive_file 4096\n",
        );
        // Inactive cache above usage (racy reads) floors at zero.
        assert_eq!(
            c.memory_usage(),
            Some(MemoryUsage {
                usage_bytes: 2048,
                working_set_bytes: 0,
                rss_bytes: Some(1),
                ..MemoryUsage::default()
            })
        );
        // A hybrid host's v2 hierarchy holds no controllers: nothing is read there.
        let hybrid = tempfile::tempdir().unwrap();
        write(hybrid.path(), "unified/berth/abc/memory.current", "1\n");
        write(
            hybrid.path(),
            "unified/berth/abc/cpu.stat",
            "usage_usec 1\n",
        );
        let c = Cgroup::new(hybrid.path(), "berth/abc");
        assert_eq!(c.memory_usage(), None);
        assert_eq!(c.cpu_usage_nanos(), None);
    }

    #[test]
    fn rss_page_faults_and_limit_v1() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "kubepods/pod1/abc");
        write(
            root.path(),
            "memory/kubepods/pod1/abc/memory.usage_in_bytes",
            "10000\n",
        );
        // The cgroup's own lines (rss, pgfault) are not the hierarchical totals.
        write(
            root.path(),
            "memory/kubepods/pod1/abc/memory.stat",
            "rss 1\npgfault 2\npgmajfault 3\ntotal_rss 4096\ntotal_pgfault 777\n\
             total_pgmajfault 5\ntotal_inactive_file 1000\n",
        );
        write(
            root.path(),
            "memory/kubepods/pod1/abc/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        let m = c.memory_usage().unwrap();
        assert_eq!(m.working_set_bytes, 9000);
        assert_eq!(m.rss_bytes, Some(4096));
        assert_eq!(m.page_faults, Some(777));
        assert_eq!(m.major_page_faults, Some(5));
        // v1's "no limit": nothing is available to compute.
        assert_eq!(m.limit_bytes, None);
        assert_eq!(m.available_bytes(), None);
        write(
            root.path(),
            "memory/kubepods/pod1/abc/memory.limit_in_bytes",
            "52428800\n",
        );
        let m = c.memory_usage().unwrap();
        assert_eq!(m.limit_bytes, Some(52_428_800));
        assert_eq!(m.available_bytes(), Some(52_428_800 - 9000));
    }

    #[test]
    fn rss_page_faults_and_limit_v2() {
        let root = tempfile::tempdir().unwrap();
        let c = Cgroup::new(root.path(), "berth/abc");
        write(root.path(), "berth/abc/memory.current", "8192\n");
        write(
            root.path(),
            "berth/abc/memory.stat",
            "anon 4096\nfile 4096\ninactive_file 1024\npgfault 12\npgmajfault 1\n",
        );
        write(root.path(), "berth/abc/memory.max", "max\n");
        let m = c.memory_usage().unwrap();
        assert_eq!(
            (m.rss_bytes, m.page_faults, m.major_page_faults),
            (Some(4096), Some(12), Some(1))
        );
        assert_eq!(m.available_bytes(), None);
        write(root.path(), "berth/abc/memory.max", "16384\n");
        // Above the limit (racy reads) floors at zero.
        assert_eq!(
            c.memory_usage().unwrap().available_bytes(),
            Some(16384 - 7168)
        );
        write(root.path(), "berth/abc/memory.max", "4096\n");
        assert_eq!(c.memory_usage().unwrap().available_bytes(), Some(0));
    }
}
