//! Project MCP servers from `<cwd>/.ratchet/mcp.json`, in the format most MCP clients share:
//!
//! ```json
//! { "mcpServers": {
//!     "files": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."],
//!                "env": { "DEBUG": "1" } },
//!     "remote": { "type": "http", "url": "https://example.com/mcp",
//!                 "headers": { "Authorization": "Bearer ..." } } } }
//! ```
//!
//! `type` is `stdio` (the default when `command` is given), `http` / `streamable-http` (the
//! default when only `url` is given) or `sse` (accepted, then reported as unsupported). Unknown
//! fields are ignored so files written for other clients still load. A relative `command` with a
//! slash (`./bin/server`) is resolved against `cwd`; a bare name (`npx`) is looked up on `PATH`.
//! Values are taken literally: no `${VAR}` expansion, so a project file cannot pull our secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::McpServerConfig;

/// Where a project's MCP servers are configured, relative to the session's cwd.
pub const PROJECT_CONFIG: &str = ".ratchet/mcp.json";

#[derive(Deserialize)]
struct File {
    #[serde(rename = "mcpServers", default)]
    mcp_servers: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The servers configured in `<cwd>/.ratchet/mcp.json`, ordered by name. A missing file means
/// none; a malformed one is an error that names the file and what to fix.
pub fn project_servers(cwd: &Path) -> Result<Vec<McpServerConfig>, String> {
    let path = cwd.join(PROJECT_CONFIG);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&text, cwd).map_err(|e| format!("{}: {e}; fix the file or remove it", path.display()))
}

/// Parses the text of an mcp.json file; `cwd` resolves relative commands.
pub(crate) fn parse(text: &str, cwd: &Path) -> Result<Vec<McpServerConfig>, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        if at.is_empty() || at == "." {
            format!("invalid JSON: {}", e.inner())
        } else {
            format!("invalid JSON at {at}: {}", e.inner())
        }
    })?;
    file.mcp_servers.into_iter().map(|(name, entry)| convert(name, entry, cwd)).collect()
}

fn convert(name: String, entry: Entry, cwd: &Path) -> Result<McpServerConfig, String> {
    let pairs = |map: BTreeMap<String, String>| map.into_iter().collect::<Vec<_>>();
    let kind = match entry.kind.as_deref() {
        Some(kind) => kind.to_ascii_lowercase(),
        None if entry.command.is_some() => "stdio".to_string(),
        None if entry.url.is_some() => "http".to_string(),
        None => {
            return Err(format!("server \"{name}\" needs either \"command\" (stdio) or \"url\" (http)"));
        }
    };
    let url = |entry: &Entry| {
        entry
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| format!("server \"{name}\" of type \"{kind}\" needs a \"url\""))
    };
    match kind.as_str() {
        "stdio" => {
            let command = entry
                .command
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| format!("server \"{name}\" needs a \"command\""))?;
            Ok(McpServerConfig::Stdio {
                command: resolve_command(&command, cwd),
                args: entry.args,
                env: pairs(entry.env),
                name,
            })
        }
        "http" | "streamable-http" | "streamablehttp" => {
            Ok(McpServerConfig::Http { url: url(&entry)?, headers: pairs(entry.headers), name })
        }
        "sse" => Ok(McpServerConfig::Sse { url: url(&entry)?, headers: pairs(entry.headers), name }),
        other => Err(format!("server \"{name}\" has unknown type \"{other}\"; use \"stdio\", \"http\" or \"sse\"")),
    }
}

/// `./bin/server` → `<cwd>/bin/server`; `npx` and absolute paths stay as they are.
fn resolve_command(command: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(command);
    if path.is_relative() && path.components().count() > 1 {
        cwd.join(path.strip_prefix(".").unwrap_or(path))
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<McpServerConfig> {
        parse(text, Path::new("/proj")).unwrap()
    }

    #[test]
    fn parses_stdio_and_http_servers_in_the_common_format() {
        let servers = parse_ok(
            r#"{
              "mcpServers": {
                "files": { "command": "npx", "args": ["-y", "server-filesystem", "."], "env": {"B": "2", "A": "1"} },
                "remote": { "type": "http", "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"} },
                "remote2": { "type": "streamable-http", "url": "https://example.com/v2" },
                "implied": { "url": "http://localhost:3001/mcp" },
                "legacy": { "type": "sse", "url": "http://localhost:3001/sse" },
                "local": { "command": "./bin/server", "someOtherClientField": true }
              }
            }"#,
        );
        assert_eq!(
            servers,
            vec![
                McpServerConfig::Stdio {
                    name: "files".into(),
                    command: "npx".into(),
                    args: vec!["-y".into(), "server-filesystem".into(), ".".into()],
                    env: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
                },
                McpServerConfig::Http {
                    name: "implied".into(),
                    url: "http://localhost:3001/mcp".into(),
                    headers: vec![]
                },
                McpServerConfig::Sse {
                    name: "legacy".into(),
                    url: "http://localhost:3001/sse".into(),
                    headers: vec![]
                },
                McpServerConfig::Stdio {
                    name: "local".into(),
                    command: "/proj/bin/server".into(),
                    args: vec![],
                    env: vec![]
                },
                McpServerConfig::Http {
                    name: "remote".into(),
                    url: "https://example.com/mcp".into(),
                    headers: vec![("Authorization".into(), "Bearer x".into())],
                },
                McpServerConfig::Http { name: "remote2".into(), url: "https://example.com/v2".into(), headers: vec![] },
            ]
        );
    }

    #[test]
    fn empty_and_serverless_files_give_no_servers() {
        assert!(parse_ok("{}").is_empty());
        assert!(parse_ok(r#"{"mcpServers": {}}"#).is_empty());
    }

    #[test]
    fn bad_entries_say_which_server_and_what_to_fix() {
        let err = |text: &str| parse(text, Path::new("/p")).unwrap_err();
        assert!(err("{ not json").contains("invalid JSON"));
        assert!(err(r#"{"mcpServers": {"a": {"command": "x", "args": "oops"}}}"#).contains("mcpServers.a.args"));
        assert!(err(r#"{"mcpServers": {"a": {}}}"#).contains("\"command\" (stdio) or \"url\""));
        assert!(err(r#"{"mcpServers": {"a": {"type": "http"}}}"#).contains("needs a \"url\""));
        assert!(err(r#"{"mcpServers": {"a": {"type": "stdio", "url": "http://x"}}}"#).contains("needs a \"command\""));
        assert!(
            err(r#"{"mcpServers": {"a": {"type": "websocket", "url": "ws://x"}}}"#)
                .contains("unknown type \"websocket\"")
        );
    }

    #[test]
    fn project_file_missing_ok_and_malformed_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(project_servers(dir.path()), Ok(vec![]));
        std::fs::create_dir(dir.path().join(".ratchet")).unwrap();
        std::fs::write(dir.path().join(PROJECT_CONFIG), "{\"mcpServers\": [1]}").unwrap();
        let err = project_servers(dir.path()).unwrap_err();
        assert!(err.contains(".ratchet/mcp.json") && err.contains("fix the file"), "{err}");
        std::fs::write(dir.path().join(PROJECT_CONFIG), r#"{"mcpServers": {"e": {"command": "/bin/e"}}}"#).unwrap();
        assert_eq!(project_servers(dir.path()).unwrap().len(), 1);
    }
}
