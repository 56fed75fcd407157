//! A recording fake of [`NsSys`]: typed call records, "mounted" pins tracked in memory,
//! and errors injected for the next call of an operation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;

use super::sys::NsSys;
use super::{NsError, NsKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Unshare(Vec<NsKind>),
    SetHostname(String),
    WriteSysctl(PathBuf, String),
    /// Entered [`NsSys::with_writable_proc_sys`]; the calls made inside follow, then
    /// `WritableProcSysDone`.
    WritableProcSys,
    WritableProcSysDone,
    Pin(NsKind, PathBuf),
    Unpin(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Unshare,
    SetHostname,
    WriteSysctl,
    Pin,
}

#[derive(Default)]
pub(crate) struct FakeNs {
    calls: Mutex<Vec<Call>>,
    mounted: Mutex<HashSet<PathBuf>>,
    /// Fail the `n`th (0-based) call of `op` with the errno.
    fail: Mutex<Option<(Op, usize, Errno)>>,
}

impl FakeNs {
    pub fn failing(op: Op, nth: usize, errno: Errno) -> FakeNs {
        let fake = FakeNs::default();
        *fake.fail.lock().unwrap() = Some((op, nth, errno));
        fake
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn mounted(&self) -> HashSet<PathBuf> {
        self.mounted.lock().unwrap().clone()
    }

    fn record(&self, op: Op, call: Call) -> Result<(), Errno> {
        let mut calls = self.calls.lock().unwrap();
        let seen = calls.iter().filter(|c| Some(op) == Self::op_of(c)).count();
        calls.push(call);
        match *self.fail.lock().unwrap() {
            Some((fail_op, nth, errno)) if fail_op == op && nth == seen => Err(errno),
            _ => Ok(()),
        }
    }

    fn op_of(call: &Call) -> Option<Op> {
        match call {
            Call::Unshare(_) => Some(Op::Unshare),
            Call::SetHostname(_) => Some(Op::SetHostname),
            Call::WriteSysctl(..) => Some(Op::WriteSysctl),
            Call::Pin(..) => Some(Op::Pin),
            Call::Unpin(_) | Call::WritableProcSys | Call::WritableProcSysDone => None,
        }
    }
}

impl NsSys for FakeNs {
    fn unshare(&self, kinds: &[NsKind]) -> Result<(), Errno> {
        self.record(Op::Unshare, Call::Unshare(kinds.to_vec()))
    }

    fn set_hostname(&self, hostname: &str) -> Result<(), Errno> {
        self.record(Op::SetHostname, Call::SetHostname(hostname.to_owned()))
    }

    fn write_sysctl(&self, path: &Path, value: &str) -> std::io::Result<()> {
        self.record(
            Op::WriteSysctl,
            Call::WriteSysctl(path.to_owned(), value.to_owned()),
        )
        .map_err(std::io::Error::from)
    }

    fn with_writable_proc_sys(
        &self,
        write: &mut dyn FnMut() -> Result<(), NsError>,
    ) -> Result<(), NsError> {
        self.calls.lock().unwrap().push(Call::WritableProcSys);
        let result = write();
        self.calls.lock().unwrap().push(Call::WritableProcSysDone);
        result
    }

    fn pin(&self, kind: NsKind, target: &Path) -> Result<(), Errno> {
        if !target.is_file() {
            return Err(Errno::ENOENT);
        }
        self.record(Op::Pin, Call::Pin(kind, target.to_owned()))?;
        self.mounted.lock().unwrap().insert(target.to_owned());
        Ok(())
    }

    fn unpin(&self, target: &Path) -> Result<(), Errno> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Unpin(target.to_owned()));
        if self.mounted.lock().unwrap().remove(target) {
            Ok(())
        } else if target.exists() {
            Err(Errno::EINVAL)
        } else {
            Err(Errno::ENOENT)
        }
    }
}
