//! The data directory (`RATCHET_HOME`) is private: it holds prompts, answers and tool output.
//!
//! Directories are created 0700 and files 0600 with explicit modes, not through the process
//! umask: commands and files that tools create for the user keep the user's umask. SQLite
//! gives its `-wal` and `-shm` files the mode of the database file, so creating that file
//! 0600 covers them. A data directory left readable by others (by an older ratchet, or by
//! hand) is tightened at start-up.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Mode of every directory ratchet creates under the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file ratchet creates under the data directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode 0700 (existing ones are left as they are).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn open_append(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().append(true).create(true)).open(path)
}

/// Creates or truncates `path` for writing, with mode 0600 when it is new.
pub fn create_file(path: &Path) -> io::Result<File> {
    private(OpenOptions::new().write(true).create(true).truncate(true)).open(path)
}

/// Creates `path` empty with mode 0600 unless it exists (before SQLite opens it).
pub fn touch(path: &Path) -> io::Result<()> {
    match private(OpenOptions::new().write(true).create_new(true)).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, FILE_MODE);
    options
}

/// Makes `home` private: creates it 0700, or, if it exists and its group or others have any
/// access, takes that away from it and from everything in it (two levels deep: the files and
/// `logs/`). Symbolic links are left alone. Returns the paths it changed, so the caller can log
/// them once logging runs. A home that is already private is not walked: everything ratchet
/// creates in it is private, and nobody else can reach inside anyway (one `stat` per start).
pub fn secure(home: &Path) -> io::Result<Vec<PathBuf>> {
    if !home.exists() {
        create_dir(home)?;
        return Ok(Vec::new());
    }
    let mut changed = Vec::new();
    tighten(home, DIR_MODE, &mut changed)?;
    if changed.is_empty() {
        return Ok(changed);
    }
    for entry in std::fs::read_dir(home)?.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            tighten(&path, DIR_MODE, &mut changed)?;
            for inner in std::fs::read_dir(&path)?.flatten() {
                if inner.file_type().is_ok_and(|k| k.is_file()) {
                    tighten(&inner.path(), FILE_MODE, &mut changed)?;
                }
            }
        } else if kind.is_file() {
            tighten(&path, FILE_MODE, &mut changed)?;
        }
    }
    Ok(changed)
}

/// Removes group and other access from `path` (keeping the owner's bits as `mode` gives them).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32, changed: &mut Vec<PathBuf>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::symlink_metadata(path)?.permissions().mode();
    if current & 0o077 != 0 {
        let owner = if mode == DIR_MODE { current & 0o700 | 0o700 } else { current & 0o700 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(owner))?;
        changed.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32, _changed: &mut Vec<PathBuf>) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_dirs_and_files() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("a/b");
        assert!(secure(&home).unwrap().is_empty());
        assert_eq!(mode(&home), 0o700);
        create_dir(&home.join("logs")).unwrap();
        assert_eq!(mode(&home.join("logs")), 0o700);
        touch(&home.join("db")).unwrap();
        assert_eq!(mode(&home.join("db")), 0o600);
        drop(open_append(&home.join("logs/x.log")).unwrap());
        assert_eq!(mode(&home.join("logs/x.log")), 0o600);
    }

    #[test]
    fn tightens_an_open_home_and_says_what_changed() {
        let home = tempfile::tempdir().unwrap();
        let set = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        std::fs::create_dir(home.path().join("logs")).unwrap();
        std::fs::write(home.path().join("ratchet.db"), "").unwrap();
        std::fs::write(home.path().join("logs/ratchet.log"), "").unwrap();
        std::fs::write(home.path().join("already.txt"), "").unwrap();
        set(home.path(), 0o755);
        set(&home.path().join("logs"), 0o755);
        set(&home.path().join("ratchet.db"), 0o644);
        set(&home.path().join("logs/ratchet.log"), 0o664);
        set(&home.path().join("already.txt"), 0o600);
        let changed = secure(home.path()).unwrap();
        assert_eq!(changed.len(), 4, "{changed:?}");
        assert_eq!(mode(home.path()), 0o700);
        assert_eq!(mode(&home.path().join("logs")), 0o700);
        assert_eq!(mode(&home.path().join("ratchet.db")), 0o600);
        assert_eq!(mode(&home.path().join("logs/ratchet.log")), 0o600);
        assert!(secure(home.path()).unwrap().is_empty(), "a second pass changes nothing");
    }
}
