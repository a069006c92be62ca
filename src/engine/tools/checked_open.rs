//! Opening a path the sandbox checked, so that what was checked is what gets opened.
//!
//! [`sandbox::resolve`](super::sandbox::resolve) returns a canonical path: no component of it
//! was a symlink when it was checked. Between that check and the open, something else (a
//! command the model started, another process) could swap a directory on the way for a
//! symlink to somewhere outside the session. Opening with a plain `open(2)` would follow it.
//! Here every component is opened relative to its parent with `O_NOFOLLOW`, so a component
//! that became a symlink fails the open instead of leading outside; parent directories that
//! do not exist are created the same way.

use std::fs::File;
use std::path::Path;
#[cfg(unix)]
use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
    path::Component,
};

/// What to open the last component as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An existing file, for reading.
    Read,
    /// A file to create or truncate, for writing; missing parent directories are created.
    Write,
}

/// Opens the checked, canonical `path` without following any symlink on the way; see the
/// module docs. The error is a message for the model.
pub fn open_checked(path: &Path, access: Access, shown: &str) -> Result<File, String> {
    open(path, access).map_err(|e| match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => format!(
            "{shown} changed while it was being opened (a part of its path became a symlink); it was not \
             opened; use a path without symlinks"
        ),
        _ if e.kind() == std::io::ErrorKind::NotFound => {
            format!("{shown} does not exist; use list_dir or glob to find the right path")
        }
        _ => format!("cannot open {shown}: {e}"),
    })
}

/// Elsewhere: a plain open (the check stands, the race is not closed).
#[cfg(not(unix))]
fn open(path: &Path, access: Access) -> std::io::Result<File> {
    match access {
        Access::Read => File::open(path),
        Access::Write => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            File::create(path)
        }
    }
}

#[cfg(unix)]
fn open(path: &Path, access: Access) -> std::io::Result<File> {
    if !path.is_absolute() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path"));
    }
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"));
    };
    let mut dir = open_at(None, Path::new("/").as_os_str(), libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for name in parents {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        dir = match open_at(Some(&dir), name, flags, 0) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && access == Access::Write => {
                make_dir_at(&dir, name)?;
                open_at(Some(&dir), name, flags, 0)?
            }
            other => other?,
        };
    }
    let flags = match access {
        Access::Read => libc::O_RDONLY,
        Access::Write => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
    };
    let file = open_at(Some(&dir), last, flags | libc::O_NOFOLLOW, 0o666)?;
    Ok(File::from(file))
}

#[cfg(unix)]
fn c_name(name: &std::ffi::OsStr) -> std::io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))
}

#[cfg(unix)]
fn open_at(
    dir: Option<&OwnedFd>,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
    mode: libc::c_uint,
) -> std::io::Result<OwnedFd> {
    let name = c_name(name)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `name` is a valid C string; `dirfd` is an open directory or AT_FDCWD.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(unix)]
fn make_dir_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> std::io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: `name` is a valid C string; `dir` is an open directory.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o777) } < 0 {
        let e = std::io::Error::last_os_error();
        // Another writer made it first: as good.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn opens_creates_and_refuses_a_symlink_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = root.join("a/b/f.txt");
        open_checked(&target, Access::Write, "a/b/f.txt").unwrap().write_all(b"hi").unwrap();
        let mut text = String::new();
        open_checked(&target, Access::Read, "a/b/f.txt").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "hi");

        // `a` becomes a symlink to outside after the check: both opens refuse.
        std::fs::rename(root.join("a"), root.join("a-moved")).unwrap();
        std::fs::create_dir(outside.path().join("b")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("a")).unwrap();
        let err = open_checked(&target, Access::Write, "a/b/f.txt").unwrap_err();
        assert!(err.contains("changed while it was being opened"), "{err}");
        assert!(!outside.path().join("b/f.txt").exists());
        assert!(open_checked(&target, Access::Read, "a/b/f.txt").is_err());
        // So does a last component that is a symlink.
        std::os::unix::fs::symlink(outside.path().join("x"), root.join("last")).unwrap();
        assert!(open_checked(&root.join("last"), Access::Write, "last").is_err());
        assert!(!outside.path().join("x").exists());
        let err = open_checked(&root.join("missing"), Access::Read, "missing").unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
