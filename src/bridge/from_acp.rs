//! ACP wire values into engine values.

use std::path::{Path, PathBuf};

use crate::acp::RpcError;
use crate::acp::schema::{ContentBlock, EmbeddedResourceResource, McpServer};
use crate::engine::ContentPart;
use crate::engine::mcp::McpServerConfig;

/// Converts a prompt. Audio is refused: it is not advertised.
pub fn prompt(blocks: Vec<ContentBlock>) -> Result<Vec<ContentPart>, RpcError> {
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
                EmbeddedResourceResource::BlobResourceContents(b) => ContentPart::ResourceLink {
                    name: b.uri.rsplit('/').next().unwrap_or(&b.uri).to_string(),
                    uri: b.uri,
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

/// Checks that a session root is absolute, as ACP requires.
pub fn absolute_dir(field: &str, path: &Path) -> Result<PathBuf, RpcError> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(RpcError::invalid_params(format!("{field} must be an absolute path, got {}", path.display())))
    }
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
