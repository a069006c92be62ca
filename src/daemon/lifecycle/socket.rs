//! Binding the control socket so that no other user can ever connect, not even for an
//! instant.
//!
//! `bind` creates the socket file with the process umask (often 0755-ish), and a later
//! `chmod` leaves a window. Changing the umask is process-wide and would race with other
//! threads creating files. Instead we bind inside a fresh 0700 directory next to the final
//! path, `chmod 0600` the socket there, and `rename` it into place: by the time the socket
//! is reachable at its real path it is already 0600. (Connecting resolves the path to the
//! socket's inode, so a renamed socket works as usual.)

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Binds a Unix socket at `path` with mode 0600. The caller must hold the daemon lock and
/// have removed any stale socket at `path` (the rename replaces whatever is there).
pub fn bind_private(path: &Path) -> io::Result<tokio::net::UnixListener> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Short, so the staging path is no longer than `daemon.sock`'s.
    let staging = parent.join(format!(".s{}", std::process::id()));
    let len = path.as_os_str().len().max(staging.as_os_str().len() + 2);
    if len > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket path {} is too long for a Unix socket (at most {MAX_SOCKET_PATH} bytes); use a shorter RATCHET_HOME",
                path.display()
            ),
        ));
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?; // left by a crashed daemon with our pid
    }
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let result = bind_in(&staging, path);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn bind_in(staging: &Path, path: &Path) -> io::Result<tokio::net::UnixListener> {
    let temp = staging.join("s");
    let listener = std::os::unix::net::UnixListener::bind(&temp)?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&temp, path)?;
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[tokio::test]
    async fn socket_is_0600_and_answers() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("daemon.sock");
        let listener = bind_private(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(home.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("daemon.sock")], "no staging dir left");

        let (_client, accepted) = tokio::join!(tokio::net::UnixStream::connect(&path), listener.accept());
        accepted.expect("a client connects through the renamed path");
    }

    #[test]
    fn too_long_a_path_says_what_to_do() {
        let long = Path::new("/tmp").join("x".repeat(120)).join("daemon.sock");
        let err = bind_private(&long).unwrap_err();
        assert!(err.to_string().contains("shorter RATCHET_HOME"), "{err}");
    }
}
