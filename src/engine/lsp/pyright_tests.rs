//! The registry with a real language server: pyright from `.ci/install-lsp-servers` (these
//! tests skip with a message without it). One server per root, reused; an idle one stopped
//! and started again on the next check; a file's unchanged text not sent twice.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A config whose only server is the pinned pyright, or `None` (with a message) without it.
pub(crate) fn pyright_config() -> Option<LspConfig> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/lsp-servers/node_modules/.bin/pyright-langserver");
    let node = config::find_on_path("node", std::env::var_os("PATH").as_deref());
    if !bin.is_file() || node.is_none() {
        // A skipped test says why, on stderr (the library has no stdout to spare).
        let _ = writeln!(
            std::io::stderr(),
            "skipping: pyright is not installed ({} or node is missing); run .ci/install-lsp-servers",
            bin.display()
        );
        return None;
    }
    let text = format!(
        "wait_secs = 30\n[servers.pyright]\ncommand = {:?}\n[servers.rust-analyzer]\nenabled = false\n\
         [servers.typescript-language-server]\nenabled = false\n[servers.gopls]\nenabled = false\n",
        bin.display().to_string()
    );
    Some(toml::from_str(&text).unwrap())
}

fn checked(check: Check) -> FileReport {
    match check {
        Check::Checked(report) => report,
        other => panic!("no diagnostics: {other:?}"),
    }
}

#[tokio::test]
async fn one_server_per_root_reused_stopped_when_idle_and_started_again() {
    let Some(config) = pyright_config() else { return };
    let lsp = Lsp::new(&config, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let file = root.join("m.py");
    let roots: Vec<PathBuf> = vec![root.clone()];
    let env = CommandEnv::default();

    let report = checked(lsp.check(&file, "n: int = 'x'\n", &roots, &env).await);
    assert_eq!((report.server.as_str(), report.errors()), ("pyright", 1), "{report:?}");
    assert_eq!(report.diagnostics[0].range.start.line, 0);
    // The same text again is answered from what it already published.
    let again = checked(lsp.check(&file, "n: int = 'x'\n", &roots, &env).await);
    assert_eq!(again, report);
    let clean = checked(lsp.check(&file, "n: int = 1\n", &roots, &env).await);
    assert_eq!(clean.errors() + clean.warnings(), 0, "{clean:?}");

    let inner = lsp.inner.as_ref().unwrap();
    assert_eq!(inner.registry.running().len(), 1);
    assert_eq!(lsp.workspace(&roots), Some(vec![]), "a clean workspace lists no files");
    inner.registry.stop_idle(Duration::from_secs(3600)).await;
    assert_eq!(inner.registry.running().len(), 1, "not idle long enough");
    inner.registry.stop_idle(Duration::ZERO).await;
    assert!(inner.registry.running().is_empty(), "stopped when idle");
    assert_eq!(lsp.workspace(&roots), None);

    let report = checked(lsp.check(&file, "n: int = 'y'\n", &roots, &env).await);
    assert_eq!(report.errors(), 1, "started again: {report:?}");
    let listed = lsp.workspace(&roots).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, file);
    lsp.shutdown().await;
    assert!(inner.registry.running().is_empty());
    assert!(matches!(lsp.check(&file, "n = 1\n", &roots, &env).await, Check::Unavailable(_)), "none after shutdown");
}

#[tokio::test]
async fn a_server_slower_than_the_wait_gives_no_diagnostics_not_a_hang() {
    let Some(mut config) = pyright_config() else { return };
    config.wait_secs = Some(0);
    let lsp = Lsp::new(&config, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let check =
        lsp.check(&root.join("slow.py"), "n: int = 'x'\n", std::slice::from_ref(&root), &CommandEnv::default()).await;
    assert!(matches!(&check, Check::Unavailable(why) if why.contains("gave no diagnostics within")), "{check:?}");
    lsp.shutdown().await;
}

#[tokio::test]
async fn a_server_that_died_gives_no_diagnostics_and_is_left_alone() {
    let Some(config) = pyright_config() else { return };
    let lsp = Lsp::new(&config, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (file, roots, env) = (root.join("d.py"), vec![root.clone()], CommandEnv::default());
    checked(lsp.check(&file, "n: int = 1\n", &roots, &env).await);
    // It goes away behind the registry's back, as a crash would.
    let inner = lsp.inner.as_ref().unwrap();
    inner.registry.running()[0].stop().await;
    let started = std::time::Instant::now();
    for text in ["n: int = 'a'\n", "n: int = 'b'\n"] {
        let check = lsp.check(&file, text, &roots, &env).await;
        assert!(matches!(&check, Check::Unavailable(why) if why.contains("not available")), "{check:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "no wait on a dead server, nor a restart each edit");
    lsp.shutdown().await;
}
