//! What a SQLite failure means for the user: a read-only data directory and a full disk are
//! said in those words, with what to do, instead of "disk I/O error (4874)".

use std::path::Path;

use rusqlite::ErrorCode;

/// Below this much free space, an I/O error while writing is taken as a full disk.
const NEARLY_FULL_BYTES: u64 = 1024 * 1024;

/// The message for `error` on the database at `db`.
pub(super) fn describe(error: &rusqlite::Error, db: &Path) -> String {
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let said = sqlite_message(error);
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => disk_full(dir),
        Some(ErrorCode::SystemIoFailure) if free_bytes(dir).is_some_and(|free| free < NEARLY_FULL_BYTES) => {
            disk_full(dir)
        }
        // A write the system refused with space left: a quota, a file size limit, a failing
        // disk. Said as what it is, with what to try, not as a bare code.
        Some(ErrorCode::SystemIoFailure) if is_write_failure(error) => format!(
            "cannot write to {} ({said}): the disk may be full, over a quota or failing; free some space on \
             it, or point RATCHET_HOME at another disk",
            dir.display()
        ),
        Some(ErrorCode::ReadOnly) => format!(
            "{said}: the database or its directory is read-only; make {} writable for your user, or point \
             RATCHET_HOME at a writable directory",
            dir.display()
        ),
        Some(ErrorCode::CannotOpen) => {
            format!("{said}; check that {} exists and is writable for your user, or set RATCHET_HOME", dir.display())
        }
        _ => said,
    }
}

/// `SQLITE_IOERR_WRITE` and `SQLITE_IOERR_FSYNC`: the data could not be written out.
fn is_write_failure(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(code, _)
            if code.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE || code.extended_code == rusqlite::ffi::SQLITE_IOERR_FSYNC
    )
}

fn disk_full(dir: &Path) -> String {
    format!(
        "the disk is full: free some space on the disk that holds {}, or point RATCHET_HOME at another disk",
        dir.display()
    )
}

/// SQLite's own words, without rusqlite's "Error code N:" wrapping.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(code, Some(message)) if !message.is_empty() => {
            if code.extended_code != code.extended_code & 0xff {
                format!("{message} (SQLite code {})", code.extended_code)
            } else {
                message.clone()
            }
        }
        rusqlite::Error::SqliteFailure(code, _) => code.to_string(),
        other => other.to_string(),
    }
}

/// Space left for an unprivileged user on the file system holding `dir`.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a valid out-pointer for the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32, message: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message.into()))
    }

    #[test]
    fn full_disk_is_said_in_words() {
        let text = describe(&failure(rusqlite::ffi::SQLITE_FULL, "database or disk is full"), Path::new("/d/r.db"));
        assert!(text.starts_with("the disk is full"), "{text}");
        assert!(text.contains("/d"), "{text}");
    }

    #[test]
    fn read_only_names_the_directory_and_the_way_out() {
        let text = describe(&failure(8, "attempt to write a readonly database"), Path::new("/d/r.db"));
        assert!(text.contains("read-only") && text.contains("RATCHET_HOME") && text.contains("/d"), "{text}");
        assert_eq!(text.matches("attempt to write a readonly database").count(), 1, "{text}");
    }

    #[test]
    fn a_refused_write_with_space_left_says_what_to_try() {
        let dir = tempfile::tempdir().unwrap();
        let text = describe(&failure(rusqlite::ffi::SQLITE_IOERR_WRITE, "disk I/O error"), &dir.path().join("r.db"));
        assert!(text.starts_with("cannot write to "), "{text}");
        assert!(text.contains("free some space") && text.contains("RATCHET_HOME"), "{text}");
    }

    #[test]
    fn an_io_error_with_space_left_keeps_sqlites_words() {
        let dir = tempfile::tempdir().unwrap();
        let text = describe(&failure(4874, "disk I/O error"), &dir.path().join("r.db"));
        assert_eq!(text, "disk I/O error (SQLite code 4874)");
    }
}
