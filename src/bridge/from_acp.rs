//! ACP wire values into engine values.

use std::path::{Path, PathBuf};

use crate::acp::RpcError;
use crate::acp::schema::{ContentBlock, EmbeddedResourceResource, McpServer};
use crate::engine::ContentPart;
use crate::engine::mcp::McpServerConfig;

/// Converts a prompt. Audio is refused: it is not advertised. An empty prompt (no blocks,
/// or only blank text) is refused too: it would cost a model call that answers nothing and
/// leave an empty user message in the history.
pub fn prompt(blocks: Vec<ContentBlock>) -> Result<Vec<ContentPart>, RpcError> {
    let parts = prompt_parts(blocks)?;
    let blank = |p: &ContentPart| matches!(p, ContentPart::Text { text } if text.trim().is_empty());
    if parts.iter().all(blank) {
        return Err(RpcError::invalid_params(
            "prompt is empty: send at least one non-blank text block, an image or a resource",
        ));
    }
    Ok(parts)
}

fn prompt_parts(blocks: Vec<ContentBlock>) -> Result<Vec<ContentPart>, RpcError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        parts.push(match block {
            ContentBlock::Text(t) => ContentPart::Text { text: t.text },
            ContentBlock::Image(i) => ContentPart::Image { mime_type: i.mime_type, data: i.data },
            ContentBlock::ResourceLink(l) => ContentPart::ResourceLink { uri: l.uri, name: l.name },
            ContentBlock::Resource(r) => match r.resource {
                EmbeddedResourceResource::TextResourceContents(t) => {
                    ContentPart::Resource { uri: t.uri, text: t.text, mime_type: t.mime_type }
                }
                // An attached picture is an image whichever way it came; other binary
                // content cannot go to a model, so it is named (the model may read the file).
                EmbeddedResourceResource::BlobResourceContents(b) => match b.mime_type {
                    Some(mime_type) if mime_type.starts_with("image/") => {
                        ContentPart::Image { mime_type, data: b.blob }
                    }
                    _ => ContentPart::ResourceLink {
                        name: b.uri.rsplit('/').next().unwrap_or(&b.uri).to_string(),
                        uri: b.uri,
                    },
                },
                _ => return Err(RpcError::invalid_params("prompt: unsupported embedded resource")),
            },
            ContentBlock::Audio(_) => {
                return Err(RpcError::invalid_params(
                    "prompt: audio content is not supported (promptCapabilities.audio is false)",
                ));
            }
            _ => return Err(RpcError::invalid_params("prompt: unsupported content block")),
        });
    }
    Ok(parts)
}

/// Checks that a directory is absolute, as ACP requires, and spells it one way: `/a/b/`,
/// `/a/b/.` and `/a//b` are all `/a/b` (lexically; symlinks are kept as the editor named them,
/// so the `cwd` of `session/list` matches the editor's own path).
pub fn absolute_dir(field: &str, path: &Path) -> Result<PathBuf, RpcError> {
    if path.is_absolute() {
        Ok(normalize(path))
    } else {
        Err(RpcError::invalid_params(format!("{field} must be an absolute path, got {}", path.display())))
    }
}

/// A session's `cwd`: absolute, normalized, and an existing directory. A root that does not
/// exist would only show up later as every tool failing with "does not exist".
pub async fn session_root(path: &Path) -> Result<PathBuf, RpcError> {
    let cwd = absolute_dir("cwd", path)?;
    match tokio::fs::metadata(&cwd).await {
        Ok(m) if m.is_dir() => Ok(cwd),
        Ok(_) => Err(RpcError::invalid_params(format!("cwd {} is not a directory", cwd.display()))),
        Err(e) => {
            Err(RpcError::invalid_params(format!("cwd {} cannot be used as the session directory: {e}", cwd.display())))
        }
    }
}

/// One spelling of a path: no trailing slash, no `.` components, no doubled slashes.
pub fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

/// Checks every additional directory.
pub fn absolute_dirs(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, RpcError> {
    paths.iter().map(|p| absolute_dir("additionalDirectories", p)).collect()
}

/// The editor's MCP server configurations as engine values.
pub fn mcp_servers(servers: Vec<McpServer>) -> Vec<McpServerConfig> {
    servers
        .into_iter()
        .filter_map(|s| match s {
            McpServer::Stdio(s) => Some(McpServerConfig::Stdio {
                name: s.name,
                command: s.command,
                args: s.args,
                env: s.env.into_iter().map(|e| (e.name, e.value)).collect(),
            }),
            McpServer::Http(h) => Some(McpServerConfig::Http {
                name: h.name,
                url: h.url,
                headers: h.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            }),
            McpServer::Sse(h) => Some(McpServerConfig::Sse {
                name: h.name,
                url: h.url,
                headers: h.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            }),
            #[allow(unreachable_patterns)]
            _ => {
                tracing::warn!("ignoring an MCP server with an unsupported transport");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acp::schema::{BlobResourceContents, EmbeddedResource, ImageContent, TextContent};

    fn text(t: &str) -> ContentBlock {
        ContentBlock::Text(TextContent::new(t))
    }

    #[test]
    fn empty_and_blank_prompts_are_invalid_params() {
        for blocks in [vec![], vec![text("")], vec![text(" \n"), text("\t")]] {
            let e = prompt(blocks).unwrap_err();
            assert_eq!(e.code, crate::acp::error::INVALID_PARAMS);
            assert!(e.message.contains("empty"), "{e}");
        }
        assert!(prompt(vec![text(""), ContentBlock::Image(ImageContent::new("AAAA", "image/png"))]).is_ok());
        assert!(prompt(vec![text("hi")]).is_ok());
    }

    #[test]
    fn blob_images_become_images_and_other_blobs_links() {
        let blob = |mime: Option<&str>| {
            let b = BlobResourceContents::new("AAAA", "file:///tmp/x/pic.png").mime_type(mime.map(str::to_string));
            ContentBlock::Resource(EmbeddedResource::new(EmbeddedResourceResource::BlobResourceContents(b)))
        };
        let parts = prompt(vec![blob(Some("image/png")), blob(Some("application/pdf")), blob(None)]).unwrap();
        assert_eq!(parts[0], ContentPart::Image { mime_type: "image/png".into(), data: "AAAA".into() });
        let link = ContentPart::ResourceLink { uri: "file:///tmp/x/pic.png".into(), name: "pic.png".into() };
        assert_eq!(parts[1], link);
        assert_eq!(parts[2], link);
    }

    #[test]
    fn directories_are_spelled_one_way() {
        for p in ["/a/b/", "/a/b/.", "/a//b", "/a/./b", "/a/b"] {
            assert_eq!(absolute_dir("cwd", Path::new(p)).unwrap(), PathBuf::from("/a/b"), "{p}");
        }
        assert_eq!(absolute_dir("cwd", Path::new("/")).unwrap(), PathBuf::from("/"));
        assert!(absolute_dir("cwd", Path::new("a/b")).is_err());
    }
}
