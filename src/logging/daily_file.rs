//! The log file: `logs/ratchet.log.YYYY-MM-DD` (UTC), a new one each day, the oldest removed
//! beyond [`KEPT_FILES`].
//!
//! Not `tracing_appender::rolling`: its constructor panics when the file cannot be opened, and
//! it creates files with the process umask, while files under the data directory must be 0600.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::data_dir;

/// File name before the date.
pub const PREFIX: &str = "ratchet.log";
/// Daily files kept (two weeks of logs); older ones are deleted when a new day starts.
pub const KEPT_FILES: usize = 14;

/// A writer that appends to today's log file, switching files when the (UTC) date changes.
pub struct DailyFile {
    dir: PathBuf,
    day: String,
    file: File,
}

impl DailyFile {
    /// Opens today's file in `dir` (creating `dir` 0700 and the file 0600). Fails, without
    /// panicking, when either cannot be created or opened for writing.
    pub fn open(dir: &Path) -> io::Result<DailyFile> {
        data_dir::create_dir(dir)?;
        let day = today();
        let file = data_dir::open_append(&dir.join(file_name(&day)))?;
        Ok(DailyFile { dir: dir.to_path_buf(), day, file })
    }

    /// The file written now.
    pub fn path(&self) -> PathBuf {
        self.dir.join(file_name(&self.day))
    }

    fn roll_if_new_day(&mut self) -> io::Result<()> {
        let day = today();
        if day != self.day {
            self.file = data_dir::open_append(&self.dir.join(file_name(&day)))?;
            self.day = day;
            prune(&self.dir);
        }
        Ok(())
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.roll_if_new_day()?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn file_name(day: &str) -> String {
    format!("{PREFIX}.{day}")
}

/// `YYYY-MM-DD` in UTC.
fn today() -> String {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    stamp[..10].to_string()
}

/// Deletes all but the newest [`KEPT_FILES`] daily files (names sort by date).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.strip_prefix(PREFIX).is_some_and(|rest| rest.starts_with('.') && rest.len() == 11))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(KEPT_FILES);
    for name in &names[..excess] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_todays_file_and_prunes_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        for day in 1..=20 {
            std::fs::write(dir.path().join(format!("{PREFIX}.2020-01-{day:02}")), "old").unwrap();
        }
        std::fs::write(dir.path().join("daemon.out"), "kept").unwrap();
        let mut log = DailyFile::open(dir.path()).unwrap();
        log.write_all(b"hello\n").unwrap();
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "hello\n");
        prune(dir.path());
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, KEPT_FILES + 1, "14 daily files and daemon.out");
        assert!(dir.path().join("daemon.out").exists());
        assert!(log.path().exists(), "today's file is the newest, so it is kept");
    }

    #[test]
    fn an_unopenable_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be opened for appending, even as root.
        std::fs::create_dir(dir.path().join(file_name(&today()))).unwrap();
        assert!(DailyFile::open(dir.path()).is_err());
    }
}
