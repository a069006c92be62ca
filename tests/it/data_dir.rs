//! The data directory is private (0700, files 0600, an open one tightened), and start-up
//! survives what an unwritable data directory or log file throws at it: no panic, one
//! warning, clear errors.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::{AcpClient, TestEnv, ratchet_bin, within};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path under `dir` with its mode, directories first.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u32, &'static str)>) {
    out.push((dir.to_path_buf(), mode(dir), "dir"));
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            walk(&entry.path(), out);
        } else if kind.is_socket() {
            out.push((entry.path(), mode(&entry.path()), "socket"));
        } else {
            out.push((entry.path(), mode(&entry.path()), "file"));
        }
    }
}

/// `ratchet acp`, a prompt, then a daemon and a prompt through it: everything they leave
/// in the data directory (database, WAL, SHM, logs, pid, lock, socket, daemon output) is
/// private.
#[tokio::test]
async fn the_data_dir_and_everything_in_it_is_private() {
    let env = TestEnv::scripted(&["First.", "Second."]);
    std::fs::remove_dir(env.ratchet_home()).unwrap();
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    assert_eq!(client.prompt_text(&session, "hello").await.stop_reason(), "end_turn");
    client.shutdown().await;

    let started = env.run(&["daemon", "start", "-b"]).await;
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let exec = env.run(&["exec", "again"]).await;
    let mut paths = Vec::new();
    walk(&env.ratchet_home(), &mut paths);
    let stop = env.run(&["daemon", "stop"]).await;
    assert!(exec.status.success(), "{}", String::from_utf8_lossy(&exec.stderr));
    assert!(stop.status.success());

    let names: Vec<String> =
        paths.iter().map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["ratchet.db", "ratchet.db-wal", "ratchet.db-shm", "daemon.sock", "daemon.pid", "daemon.out"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("ratchet.log.")), "no log file in {names:?}");
    for (path, mode, kind) in &paths {
        let want = if *kind == "dir" { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{kind} {} has mode {mode:o}", path.display());
    }
}

/// A data directory an older version (or a careless `chmod`) left readable is tightened at
/// start-up, and the log says so.
#[tokio::test]
async fn an_open_data_dir_is_tightened_and_the_log_says_so() {
    let env = TestEnv::scripted(&["One.", "Two."]);
    let first = env.run(&["exec", "one"]).await;
    assert!(first.status.success());
    let home = env.ratchet_home();
    set_mode(&home, 0o755);
    set_mode(&home.join("logs"), 0o755);
    set_mode(&home.join("ratchet.db"), 0o644);
    let second = env.run(&["exec", "two"]).await;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("was readable by other users"), "{stderr}");
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("logs")), 0o700);
    assert_eq!(mode(&home.join("ratchet.db")), 0o600);
}

/// Today's log file name (UTC), as the daily log writer names it.
fn todays_log(home: &Path) -> PathBuf {
    let out = std::process::Command::new("date").args(["-u", "+%F"]).output().unwrap();
    home.join("logs").join(format!("ratchet.log.{}", String::from_utf8_lossy(&out.stdout).trim()))
}

/// A log file that cannot be opened (here a directory in its place, which even root cannot
/// open for writing) used to panic inside the log appender before `initialize` was answered.
#[tokio::test]
async fn an_unwritable_log_file_leaves_logging_on_stderr_with_one_warning() {
    let env = TestEnv::scripted(&["Still here."]);
    std::fs::create_dir_all(todays_log(&env.ratchet_home())).unwrap();
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "hello").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let stderr = client.stderr();
    client.shutdown().await;
    assert_eq!(stderr.matches("logging to stderr only").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("serving ACP"), "logs still reach stderr: {stderr}");
}

/// Runs `ratchet` as a user who cannot write the data directory: `nobody` when the tests run
/// as root (root writes anywhere), else the current user after a `chmod`. The binary is
/// copied where that user can run it.
pub(crate) struct ReadOnlyHome {
    pub(crate) env: TestEnv,
    bin: PathBuf,
    uid: Option<u32>,
}

impl ReadOnlyHome {
    /// A data directory with a database and a log file in it (from one run), then made
    /// read-only, the log file too.
    pub(crate) async fn new() -> ReadOnlyHome {
        let env = TestEnv::scripted(&["One.", "Two.", "Three."]);
        assert!(env.run(&["exec", "one"]).await.status.success());
        let root = env.ratchet_home().parent().unwrap().to_path_buf();
        let bin = root.join("ratchet");
        std::fs::copy(ratchet_bin(), &bin).unwrap();
        // SAFETY: geteuid has no preconditions.
        let uid = (unsafe { libc::geteuid() } == 0).then_some(65534);
        if let Some(uid) = uid {
            let chown = std::process::Command::new("chown").arg("-R").arg(format!("{uid}:{uid}")).arg(&root).status();
            assert!(chown.unwrap().success());
            set_mode(&root, 0o755);
        }
        let home = env.ratchet_home();
        set_mode(&todays_log(&home), 0o400);
        set_mode(&home.join("logs"), 0o500);
        set_mode(&home, 0o500);
        ReadOnlyHome { env, bin, uid }
    }

    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .envs(self.env.vars().iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.env.workspace())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(uid) = self.uid {
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    async fn run(&self, args: &[&str]) -> (std::process::ExitStatus, String) {
        let out = within("ratchet to exit", self.command(args).output()).await.unwrap();
        (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A read-only data directory that holds a database: ratchet starts, answers `initialize`
/// and prompts (the database files themselves are writable), with one warning about the
/// logs; once the database is read-only too, it says so once, with what to do, and exits 1.
#[tokio::test]
async fn a_read_only_data_dir_gives_one_warning_then_a_clear_error() {
    let ro = ReadOnlyHome::new().await;
    let mut client = AcpClient::spawn_command(ro.command(&["acp"]));
    client.initialize().await;
    let session = client.new_session(&ro.env.cwd()).await;
    assert_eq!(client.prompt_text(&session, "two").await.stop_reason(), "end_turn");
    let stderr = client.stderr();
    client.shutdown().await;
    assert_eq!(stderr.matches("logging to stderr only").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let home = ro.env.ratchet_home();
    for file in ["ratchet.db", "ratchet.db-wal", "ratchet.db-shm"] {
        if home.join(file).exists() {
            set_mode(&home.join(file), 0o400);
        }
    }
    let (status, stderr) = ro.run(&["exec", "three"]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error.contains("read-only") && error.contains("RATCHET_HOME"), "{error}");
    assert_eq!(error.matches("readonly database").count(), 1, "said once: {error}");
}

/// Unmounts a small tmpfs when dropped.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk at start used to say "disk I/O error ... 4874". Needs a small file system:
/// a tmpfs, which root can mount (CI runs as root); elsewhere the message itself is covered
/// by the unit tests of `store::sqlite_error`.
#[tokio::test]
async fn a_full_disk_at_start_says_the_disk_is_full() {
    let env = TestEnv::scripted(&["Hi."]);
    let mount_point = env.ratchet_home().parent().unwrap().join("small-disk");
    std::fs::create_dir(&mount_point).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mount_point)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    let _disk = SmallDisk(mount_point.clone());
    // Fill it up but for a few KiB.
    let filler = vec![0u8; 250 * 1024];
    let _ = std::fs::write(mount_point.join("filler"), filler);
    let mut env = env;
    env.set("RATCHET_HOME", mount_point.join("home").to_str().unwrap());
    let out = env.run(&["exec", "hello"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error.contains("the disk is full"), "{error}");
    assert!(!error.contains("4874") && !stderr.contains("panicked"), "{stderr}");
}
