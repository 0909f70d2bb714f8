//! The projector lease beside an SQLite read model: an exclusive OS file lock (`flock` on Linux) on a
//! file next to the database. The kernel releases it when the file is closed, which happens when the
//! holder drops it and when the holder's process dies, also by SIGKILL; nothing else can take it from
//! a living holder, so `confirm` has nothing to lose.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ledger_application::ports::{HeldLease, LeaseLost, ProjectorLease, StoreError};

/// The lease kept in the lock file beside one database. Every value is a contender; each attempt opens
/// the file anew, so that two attempts never share the open file a lock belongs to.
#[derive(Debug, Clone)]
pub struct SqliteProjectorLease {
    lock_path: PathBuf,
}

impl SqliteProjectorLease {
    /// The lease of the read model in `database_path`, kept in `<database>.projector.lock`. The lock
    /// file is never removed: removing it would let a contender lock a new file while the holder
    /// still holds the old one.
    pub fn beside(database_path: &Path) -> Self {
        Self::beside_for(database_path, "projector")
    }

    /// Another exclusive lease on the same database, for `purpose` (`rebuild`: one `ledger rebuild`
    /// at a time), kept in `<database>.<purpose>.lock`.
    pub fn beside_for(database_path: &Path, purpose: &str) -> Self {
        let mut name = database_path.as_os_str().to_owned();
        name.push(format!(".{purpose}.lock"));
        Self {
            lock_path: PathBuf::from(name),
        }
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
}

#[async_trait]
impl ProjectorLease for SqliteProjectorLease {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldLease>>, StoreError> {
        // Opening a local file and a non-blocking lock attempt: short enough not to need a thread.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(StoreError::unavailable)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(SqliteHeldLease { _file: file }))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => Err(StoreError::unavailable(error)),
        }
    }
}

/// The locked file; closing it (dropping this) releases the lock.
struct SqliteHeldLease {
    _file: File,
}

#[async_trait]
impl HeldLease for SqliteHeldLease {
    async fn confirm(&self) -> Result<(), LeaseLost> {
        Ok(())
    }
}
