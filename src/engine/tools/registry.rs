//! The set of tools a session offers the model: the built-ins, plus any added later (MCP).
//!
//! Names are unique: a tool added under a name that is taken is refused, so an MCP server can
//! never shadow a built-in (and so change what a name is allowed to do).

use std::sync::Arc;

use super::diagnostics::DiagnosticsTool;
use super::edit::EditFileTool;
use super::glob::GlobTool;
use super::grep::GrepTool;
use super::list::ListDirTool;
use super::plan::UpdatePlanTool;
use super::read::ReadFileTool;
use super::shell::ShellTool;
use super::write::WriteFileTool;
use super::{Tool, ToolKind};
use crate::engine::lsp::Lsp;
use crate::engine::provider::ToolSpec;

/// Tools by name, in the order they are offered.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// The built-in tools; `diagnostics` asks the engine's language servers.
    pub fn builtin(lsp: &Lsp) -> Self {
        let tools: Vec<Arc<dyn Tool>> = vec![
            Arc::new(ReadFileTool),
            Arc::new(ListDirTool),
            Arc::new(GlobTool),
            Arc::new(GrepTool),
            Arc::new(DiagnosticsTool::new(lsp.clone())),
            Arc::new(EditFileTool),
            Arc::new(WriteFileTool),
            Arc::new(ShellTool),
            Arc::new(UpdatePlanTool),
        ];
        ToolRegistry { tools }
    }

    /// The tool with this name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name).cloned()
    }

    /// Adds a tool. Returns false (and adds nothing) if its name is already taken.
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> bool {
        if self.get(&tool.spec().name).is_some() {
            return false;
        }
        self.tools.push(tool);
        true
    }

    /// Only the tools named in `allowed` (unknown names are ignored), in their order here.
    pub fn only(self, allowed: &[String]) -> Self {
        ToolRegistry { tools: self.tools.into_iter().filter(|t| allowed.contains(&t.spec().name)).collect() }
    }

    /// Every tool's spec, for the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    /// Specs of the tools allowed in a mode: all of them, or with `read_only` only those that
    /// change nothing (kinds Read, Search, Think, Fetch), for "plan" mode.
    pub fn specs_filtered(&self, read_only: bool) -> Vec<ToolSpec> {
        self.tools.iter().filter(|t| !read_only || is_read_only(t.kind())).map(|t| t.spec()).collect()
    }

    /// Names of all tools, in order.
    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.spec().name).collect()
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// True if there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// Kinds that only look: the tools "plan" mode keeps.
pub fn is_read_only(kind: ToolKind) -> bool {
    matches!(kind, ToolKind::Read | ToolKind::Search | ToolKind::Think | ToolKind::Fetch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::{Preview, ToolContext, ToolOutput};
    use futures::future::BoxFuture;
    use serde_json::Value;

    struct Fake(&'static str, ToolKind);

    impl Tool for Fake {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.0.into(),
                description: "fake".into(),
                parameters: serde_json::json!({"type": "object"}),
            }
        }
        fn kind(&self) -> ToolKind {
            self.1
        }
        fn preview<'a>(&'a self, _: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
            Box::pin(async { Preview { title: "fake".into(), locations: vec![], display: vec![] } })
        }
        fn run<'a>(&'a self, _: Value, _: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
            Box::pin(async { ToolOutput::text("fake") })
        }
    }

    #[test]
    fn builtin_names_and_specs() {
        let r = ToolRegistry::builtin(&Lsp::default());
        assert_eq!(
            r.names(),
            ["read_file", "list_dir", "glob", "grep", "diagnostics", "edit_file", "write_file", "shell", "update_plan"]
        );
        for spec in r.specs() {
            assert!(!spec.description.is_empty(), "{}", spec.name);
            assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
            assert_eq!(spec.parameters["additionalProperties"], false, "{}", spec.name);
            // Every required argument is a declared property.
            for req in spec.parameters["required"].as_array().into_iter().flatten() {
                assert!(spec.parameters["properties"][req.as_str().unwrap()].is_object(), "{}: {req}", spec.name);
            }
        }
        assert_eq!(r.get("shell").unwrap().kind(), ToolKind::Execute);
        assert!(r.get("nope").is_none());
    }

    #[test]
    fn read_only_filter_keeps_looking_tools() {
        let r = ToolRegistry::builtin(&Lsp::default());
        let names: Vec<String> = r.specs_filtered(true).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["read_file", "list_dir", "glob", "grep", "diagnostics", "update_plan"]);
        assert_eq!(r.specs_filtered(false).len(), r.len());
    }

    #[test]
    fn add_refuses_taken_names() {
        let mut r = ToolRegistry::builtin(&Lsp::default());
        assert!(!r.add(Arc::new(Fake("shell", ToolKind::Read))));
        assert_eq!(r.get("shell").unwrap().kind(), ToolKind::Execute);
        assert!(r.add(Arc::new(Fake("mcp_fetch", ToolKind::Fetch))));
        assert_eq!(r.len(), 10);
        assert!(r.specs_filtered(true).iter().any(|s| s.name == "mcp_fetch"));
        assert!(ToolRegistry::default().is_empty());
    }
}
