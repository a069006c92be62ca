//! Where tools may look and write: the session's directories, minus denied paths.
//!
//! Every path a model gives goes through [`resolve`]: relative paths are taken against the
//! session's `cwd`, `.`/`..` are folded lexically, symlinks are resolved (for the path or its
//! nearest existing ancestor), and the result must lie inside `cwd` or one of the extra roots.
//! Deny globs (the session's plus [`default_deny_globs`] for the user's credentials) win even
//! inside the roots. Tools then use the returned canonical path, so what was checked is what
//! gets opened.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::ToolContext;

/// Credential files and folders under the home directory that tools never touch.
pub fn default_deny_globs(home: &Path) -> Vec<String> {
    let home = globset::escape(&home.to_string_lossy());
    let home = home.trim_end_matches('/');
    [".ssh/**", ".aws/**", ".gnupg/**", ".config/gcloud/**", ".kube/**", ".docker/config.json", ".netrc"]
        .iter()
        .map(|rel| format!("{home}/{rel}"))
        .collect()
}

/// Resolves a path the model gave; see the module docs. Errors are messages for the model.
pub fn resolve(cx: &ToolContext, raw: &str) -> Result<PathBuf, String> {
    Guard::new(cx).resolve(raw)
}

/// The session's roots and deny globs, compiled once for a tool call (walkers check every
/// entry they visit).
pub struct Guard {
    roots: Vec<PathBuf>,
    deny: GlobSet,
}

impl Guard {
    /// Compiles the context's roots and deny globs. Invalid deny globs are skipped (logged).
    pub fn new(cx: &ToolContext) -> Guard {
        Guard::with_roots(&cx.cwd, &cx.extra_roots, &cx.deny_paths)
    }

    /// [`Guard::new`] from the parts of a context it uses (the fuzz target has no context).
    pub fn with_roots(cwd: &Path, extra_roots: &[PathBuf], deny_paths: &[String]) -> Guard {
        let mut roots = Vec::new();
        for root in std::iter::once(cwd).chain(extra_roots.iter().map(PathBuf::as_path)) {
            let lexical = normalize(root);
            let canonical = std::fs::canonicalize(&lexical).unwrap_or(lexical);
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        let mut builder = GlobSetBuilder::new();
        for glob in deny_paths.iter().chain(builtin_deny()) {
            add_deny(&mut builder, glob);
        }
        let deny = builder.build().unwrap_or_else(|e| {
            tracing::warn!("cannot compile deny globs: {e}");
            GlobSet::empty()
        });
        Guard { roots, deny }
    }

    /// Resolves and checks one path.
    pub fn resolve(&self, raw: &str) -> Result<PathBuf, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("path is empty; give a path relative to the session directory".to_string());
        }
        let joined = match self.roots.first() {
            Some(cwd) => cwd.join(trimmed),
            None => PathBuf::from(trimmed),
        };
        let lexical = normalize(&joined);
        let canonical = canonicalize_existing(&lexical)?;
        if self.is_denied(&lexical) || self.is_denied(&canonical) {
            return Err(format!("path {} is protected (it matches a deny rule) and cannot be used", lexical.display()));
        }
        if !self.roots.iter().any(|r| canonical.starts_with(r)) {
            let roots = self.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
            let shown = if canonical == lexical {
                lexical.display().to_string()
            } else {
                format!("{} (which resolves to {})", lexical.display(), canonical.display())
            };
            return Err(format!(
                "path {shown} is outside the session's directories ({roots}); only files under them can be used"
            ));
        }
        Ok(canonical)
    }

    /// True if `path` (absolute) matches a deny glob.
    pub fn is_denied(&self, path: &Path) -> bool {
        self.deny.is_match(path)
    }

    /// The canonical session directory (`cwd`).
    pub fn cwd(&self) -> &Path {
        &self.roots[0]
    }
}

/// The default deny globs for this user's home, plus its canonical form when that differs.
fn builtin_deny() -> &'static [String] {
    static DENY: OnceLock<Vec<String>> = OnceLock::new();
    DENY.get_or_init(|| {
        let Some(home) = dirs::home_dir() else { return Vec::new() };
        let mut globs = default_deny_globs(&home);
        if let Ok(canonical) = std::fs::canonicalize(&home)
            && canonical != home
        {
            globs.extend(default_deny_globs(&canonical));
        }
        globs
    })
}

/// Adds a deny glob; `dir/**` also denies `dir` itself (so it cannot be listed).
fn add_deny(builder: &mut GlobSetBuilder, glob: &str) {
    let mut globs = vec![glob.to_string()];
    if let Some(dir) = glob.strip_suffix("/**")
        && !dir.is_empty()
    {
        globs.push(dir.to_string());
    }
    for g in globs {
        match GlobBuilder::new(&g).literal_separator(true).build() {
            Ok(g) => {
                builder.add(g);
            }
            Err(e) => tracing::warn!("ignoring invalid deny glob {g:?}: {e}"),
        }
    }
}

/// Folds `.` and `..` without touching the file system (`..` at the root stays at the root).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // Never pop past the root or a prefix.
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// Resolves symlinks in the longest existing prefix of `path` and appends the rest.
/// Refuses a dangling symlink on the way: writing through it would land who knows where.
fn canonicalize_existing(path: &Path) -> Result<PathBuf, String> {
    let mut existing = path;
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if std::fs::symlink_metadata(existing).is_ok() {
            return match std::fs::canonicalize(existing) {
                Ok(mut canonical) => {
                    canonical.extend(rest.iter().rev());
                    Ok(canonical)
                }
                Err(e) => Err(format!(
                    "cannot resolve {}: {e} (a broken symlink or no permission); use another path",
                    existing.display()
                )),
            };
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            // Nothing exists at all (not even the root): keep the lexical path.
            _ => return Ok(path.to_path_buf()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::testutil::context;

    #[test]
    fn relative_paths_resolve_inside_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        let cx = context(dir.path());
        assert_eq!(resolve(&cx, "src/main.rs").unwrap(), root.join("src/main.rs"));
        assert_eq!(resolve(&cx, "./src/../src/./lib.rs").unwrap(), root.join("src/lib.rs"));
        assert_eq!(resolve(&cx, "new/dir/file.txt").unwrap(), root.join("new/dir/file.txt"));
        assert_eq!(resolve(&cx, ".").unwrap(), root);
        assert_eq!(resolve(&cx, &root.join("x").to_string_lossy()).unwrap(), root.join("x"));
    }

    #[test]
    fn dotdot_and_absolute_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cx = context(dir.path());
        let err = resolve(&cx, "../outside.txt").unwrap_err();
        assert!(err.contains("is outside the session's directories"), "{err}");
        assert!(err.contains("only files under them can be used"), "{err}");
        let err = resolve(&cx, "/etc/passwd").unwrap_err();
        assert!(err.starts_with("path /etc/passwd is outside"), "{err}");
        assert!(resolve(&cx, "").unwrap_err().contains("empty"));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_pointing_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let cx = context(dir.path());
        let err = resolve(&cx, "link/secret.txt").unwrap_err();
        assert!(err.contains("which resolves to"), "{err}");
        // A file that does not exist yet behind the link is refused too.
        assert!(resolve(&cx, "link/new.txt").is_err());
        // A dangling link is refused rather than written through.
        std::os::unix::fs::symlink("/nonexistent-ratchet-target/x", dir.path().join("dangling")).unwrap();
        let err = resolve(&cx, "dangling").unwrap_err();
        assert!(err.contains("broken symlink"), "{err}");
    }

    #[test]
    fn extra_roots_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut cx = context(dir.path());
        let target = other.path().join("a.txt");
        assert!(resolve(&cx, &target.to_string_lossy()).is_err());
        cx.extra_roots.push(other.path().to_path_buf());
        assert_eq!(
            resolve(&cx, &target.to_string_lossy()).unwrap(),
            other.path().canonicalize().unwrap().join("a.txt")
        );
    }

    #[test]
    fn deny_globs_win_inside_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("keys")).unwrap();
        let mut cx = context(&root);
        cx.deny_paths = vec![format!("{}/keys/**", root.display()), "**/*.pem".to_string()];
        for p in ["keys/id_rsa", "keys", "sub/cert.pem"] {
            let err = resolve(&cx, p).unwrap_err();
            assert!(err.contains("is protected"), "{p}: {err}");
        }
        assert!(resolve(&cx, "keys.txt").is_ok());
        assert!(Guard::new(&cx).is_denied(&root.join("keys/a")));
    }

    #[test]
    fn default_deny_list_covers_credentials() {
        let home = Path::new("/home/u");
        let globs = default_deny_globs(home);
        assert!(globs.contains(&"/home/u/.ssh/**".to_string()));
        assert!(globs.contains(&"/home/u/.netrc".to_string()));
        assert!(!globs.iter().any(|g| g.contains(".env")));
        // A session rooted at home still cannot read the keys.
        let mut cx = context(home);
        cx.deny_paths = globs;
        let guard = Guard::new(&cx);
        for p in [".ssh/id_ed25519", ".ssh", ".aws/credentials", ".kube/config", ".docker/config.json", ".netrc"] {
            assert!(guard.is_denied(&home.join(p)), "{p}");
        }
        assert!(!guard.is_denied(&home.join("project/.env")));
        assert!(!guard.is_denied(&home.join(".docker/other.json")));
    }

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize(Path::new("/../..")), PathBuf::from("/"));
        assert_eq!(normalize(Path::new("a/../..")), PathBuf::from(".."));
    }
}
