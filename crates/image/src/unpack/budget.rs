//! A cap on what the tar parser reads between two entries. The parser holds PAX records and
//! GNU long names in memory, so without a cap a hostile header would make it allocate as
//! much as it declares (and a few compressed bytes can declare gigabytes).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use super::{Limits, UnpackError};

/// Bytes of PAX records one entry may carry (xattrs, times), on top of two names.
const EXTENSION_BYTES: u64 = 1 << 20;

/// Header blocks one entry may take besides its extension data (its own header, the
/// extension headers, GNU sparse maps, the previous entry's padding).
const HEADER_BLOCKS: u64 = 16 * 512;

/// How many bytes the tar parser may read while it looks for the next entry. The parser
/// reads PAX records and GNU long names into memory, so without a cap a hostile header
/// would make it allocate as much as it declares.
#[derive(Clone)]
pub(super) struct Budget(Rc<BudgetState>);

struct BudgetState {
    max: u64,
    armed: Cell<bool>,
    used: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    /// The budget for one entry under `limits`: its names and its PAX records.
    pub(super) fn for_limits(limits: &Limits) -> Budget {
        let names = u64::try_from(limits.max_path_bytes)
            .unwrap_or(u64::MAX)
            .saturating_mul(2);
        Budget::new(
            EXTENSION_BYTES
                .saturating_add(names)
                .saturating_add(HEADER_BLOCKS),
        )
    }

    fn new(max: u64) -> Budget {
        Budget(Rc::new(BudgetState {
            max,
            armed: Cell::new(false),
            used: Cell::new(0),
            exceeded: Cell::new(false),
        }))
    }

    pub(super) fn arm(&self) {
        self.0.used.set(0);
        self.0.armed.set(true);
    }

    pub(super) fn disarm(&self) {
        self.0.armed.set(false);
    }

    /// The parser's error, or the budget's if that is what stopped it.
    pub(super) fn error(&self, e: io::Error) -> UnpackError {
        if self.0.exceeded.get() {
            UnpackError::HeadersTooLarge { max: self.0.max }
        } else {
            UnpackError::Tar(e)
        }
    }
}

pub(super) struct Budgeted<R> {
    pub(super) inner: R,
    pub(super) budget: Budget,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &self.budget.0;
        if !state.armed.get() || buf.is_empty() {
            return self.inner.read(buf);
        }
        let left = state.max - state.used.get();
        if left == 0 {
            state.exceeded.set(true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "extension headers too large",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        state.used.set(state.used.get() + n as u64);
        Ok(n)
    }
}
