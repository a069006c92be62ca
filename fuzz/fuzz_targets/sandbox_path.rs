//! Path resolution in the tools' sandbox: any path a model gives, against a session directory
//! holding symlinks that lead out, a link to itself, a dangling link and a denied folder,
//! either resolves to a path inside the session's directories that no deny rule matches, or
//! is refused. And the lexical folding of `.`/`..` is idempotent and leaves no `.` behind.
#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ratchet::engine::tools::sandbox::{Guard, normalize};

struct World {
    guard: Guard,
    roots: Vec<PathBuf>,
}

/// The session directory and its surroundings, made once per process.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("ratchet-fuzz-sandbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (cwd, extra, outside) = (base.join("cwd"), base.join("extra"), base.join("outside"));
        for dir in [cwd.join("src/deep"), cwd.join("keys"), extra.clone(), outside.clone()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(outside.join("secret.txt"), "x").unwrap();
        std::fs::write(cwd.join("keys/id_rsa"), "x").unwrap();
        std::fs::write(cwd.join("src/main.rs"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, cwd.join("out")).unwrap();
        std::os::unix::fs::symlink("../../outside/secret.txt", cwd.join("src/deep/up")).unwrap();
        std::os::unix::fs::symlink(cwd.join("self"), cwd.join("self")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-ratchet-fuzz/x", cwd.join("dangling")).unwrap();
        std::os::unix::fs::symlink(cwd.join("keys"), extra.join("keys-link")).unwrap();
        let deny = vec![format!("{}/keys/**", cwd.display()), "**/*.pem".to_string()];
        let guard = Guard::with_roots(&cwd, std::slice::from_ref(&extra), &deny);
        let roots = [cwd, extra].map(|r| r.canonicalize().unwrap()).to_vec();
        World { guard, roots }
    })
}

fn check_normalize(path: &Path) {
    let once = normalize(path);
    assert_eq!(normalize(&once), once, "normalize is not idempotent for {path:?}");
    let mut seen_name = false;
    for c in once.components() {
        match c {
            Component::CurDir => assert_eq!(once, Path::new("."), "a `.` left in {once:?} from {path:?}"),
            Component::ParentDir => assert!(!seen_name && !once.has_root(), "a `..` left in {once:?} from {path:?}"),
            Component::Normal(_) => seen_name = true,
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    check_normalize(Path::new(raw));
    let world = world();
    let Ok(resolved) = world.guard.resolve(raw) else { return };
    assert!(resolved.is_absolute(), "{raw:?} resolved to a relative path {resolved:?}");
    assert!(
        world.roots.iter().any(|r| resolved.starts_with(r)),
        "{raw:?} resolved to {resolved:?}, outside the session's directories"
    );
    assert!(!world.guard.is_denied(&resolved), "{raw:?} resolved to the denied {resolved:?}");
    assert!(
        !resolved.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)),
        "{raw:?} resolved to {resolved:?}, which still holds `.` or `..`"
    );
});
