//! The data dir's file modes: the dir 0700 and every file in it 0600, whatever the umask. The
//! log holds password hashes and the history of every object, the key file opens secret values,
//! and the TLS key is the server's identity: only the account running the server may read them.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates the data dir with mode 0700, or tightens an existing one to 0700, warning when others
/// could read it.
pub fn prepare(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the data dir was open to other accounts; setting it to 0700 (check who may have copied it)"
                );
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
        }
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Sets every file directly in the data dir to 0600. A file this account cannot change (not its
/// own) is reported, not fatal.
pub fn restrict_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() || meta.permissions().mode() & 0o777 == FILE_MODE {
            continue;
        }
        if let Err(error) = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(FILE_MODE)) {
            tracing::warn!(file = %entry.path().display(), %error, "cannot set the file's mode to 0600");
        }
    }
    Ok(())
}
