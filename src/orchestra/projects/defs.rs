//! Project definitions: `<cwd>/.ratchet/projects/<name>.yaml`, then the user's
//! `RATCHET_HOME/projects/<name>.yaml` (the first definition of a name wins; later ones are
//! shadowed), read the way agent definitions are (`agents.rs`): a broken file is named with
//! what is wrong and skipped, the others still load.
//!
//! ```yaml
//! name: web                 # default: the file's stem
//! description: The web app
//! cwd: .                    # the project's root; relative to the directory holding
//!                           # .ratchet/ (a file under RATCHET_HOME needs an absolute path)
//! workdir: app              # where its agents work (their session directory); default cwd
//! paths: [shared, /data/x]  # more directories its agents may use; relative to cwd
//! teams: [code-gen]         # teams to start on `ratchet project start`
//! task: Build the login page   # what those teams are asked to do
//! ```
//!
//! The allow-list of the project's agents is `workdir` and `paths`: the session sandbox
//! refuses every other path (`engine::tools::sandbox`).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::orchestra::agents::{MAX_DEFINITION_BYTES, Skipped, definition_files};

/// Where a project definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectOrigin {
    /// `<cwd>/.ratchet/projects/`.
    Project,
    /// `RATCHET_HOME/projects/`.
    User,
}

/// One project as its file defines it, paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDef {
    pub name: String,
    pub description: Option<String>,
    /// The project's root.
    pub cwd: PathBuf,
    /// Where its agents work: their sessions are rooted here.
    pub workdir: PathBuf,
    /// Further directories its agents may use.
    pub paths: Vec<PathBuf>,
    /// The teams `ratchet project start` starts.
    pub teams: Vec<String>,
    /// What those teams are asked to do.
    pub task: Option<String>,
    pub origin: ProjectOrigin,
    pub source: PathBuf,
}

impl ProjectDef {
    /// Every directory its agents may use: `workdir` first, then `paths`.
    pub fn allowed(&self) -> Vec<PathBuf> {
        let mut all = vec![self.workdir.clone()];
        all.extend(self.paths.iter().filter(|p| **p != self.workdir).cloned());
        all
    }
}

/// Every project definition found for a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCatalog {
    pub projects: Vec<ProjectDef>,
    pub shadowed: Vec<ProjectDef>,
    pub skipped: Vec<Skipped>,
}

impl ProjectCatalog {
    pub fn get(&self, name: &str) -> Option<&ProjectDef> {
        self.projects.iter().find(|p| p.name == name)
    }
}

/// Loads the project definitions seen from `cwd`, with the data directory `home`.
pub fn load(cwd: &Path, home: &Path) -> ProjectCatalog {
    let mut catalog = ProjectCatalog::default();
    let dirs = [(cwd.join(".ratchet/projects"), ProjectOrigin::Project), (home.join("projects"), ProjectOrigin::User)];
    for (dir, origin) in dirs {
        for path in definition_files(&dir, &["yaml", "yml"], "project", &mut catalog.skipped) {
            match read(&path, origin, cwd) {
                Ok(def) if catalog.get(&def.name).is_some() => catalog.shadowed.push(def),
                Ok(def) => catalog.projects.push(def),
                Err(reason) => catalog.skipped.push(Skipped { source: path, reason }),
            }
        }
    }
    catalog
}

/// Whether `name` can name a project: letters, digits, `-`, `_` (it is typed on command lines
/// and is a file's stem).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    description: Option<String>,
    cwd: Option<PathBuf>,
    workdir: Option<PathBuf>,
    #[serde(default)]
    paths: Vec<PathBuf>,
    #[serde(default)]
    teams: Vec<String>,
    task: Option<String>,
}

fn read(path: &Path, origin: ProjectOrigin, cwd: &Path) -> Result<ProjectDef, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_DEFINITION_BYTES {
        return Err(format!("larger than {} KiB", MAX_DEFINITION_BYTES / 1024));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    parse(&text, path, origin, cwd)
}

/// A definition file's text as a project; `path` names it when the file does not.
pub(crate) fn parse(text: &str, path: &Path, origin: ProjectOrigin, cwd: &Path) -> Result<ProjectDef, String> {
    let fields: Fields = if text.trim().is_empty() {
        return Err("the file is empty: give at least the project's cwd or workdir".into());
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
    let name = fields.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or(stem);
    if !valid_name(&name) {
        return Err(format!("the name {name:?} must be letters, digits, '-' or '_'"));
    }
    let root = match (origin, fields.cwd) {
        (_, Some(dir)) if dir.is_absolute() => normalize(&dir),
        (ProjectOrigin::Project, Some(dir)) => normalize(&cwd.join(dir)),
        (ProjectOrigin::Project, None) => normalize(cwd),
        (ProjectOrigin::User, _) => {
            return Err("a project under RATCHET_HOME/projects needs `cwd:` as an absolute path".into());
        }
    };
    let under_root = |p: PathBuf| if p.is_absolute() { normalize(&p) } else { normalize(&root.join(p)) };
    let workdir = fields.workdir.map(under_root).unwrap_or_else(|| root.clone());
    let paths: Vec<PathBuf> = fields.paths.into_iter().map(under_root).collect();
    let teams: Vec<String> = fields.teams.into_iter().map(|t| t.trim().to_string()).collect();
    if let Some(bad) = teams.iter().find(|t| !valid_name(t)) {
        return Err(format!("teams: {bad:?} is not a team name (letters, digits, '-' or '_')"));
    }
    Ok(ProjectDef {
        name,
        description: fields.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()),
        cwd: root,
        workdir,
        paths,
        teams,
        task: fields.task.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
        origin,
        source: path.to_path_buf(),
    })
}

/// `.` and `..` folded lexically (the sandbox resolves symlinks itself).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn projects_load_with_paths_under_their_root_and_broken_files_are_named() {
        let cwd = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let root = cwd.path();
        write(
            root,
            ".ratchet/projects/web.yaml",
            "workdir: app\npaths: [shared, /opt/data]\nteams: [code-gen]\ntask: Build it\n",
        );
        write(root, ".ratchet/projects/bad.yaml", "workdir: [unclosed\n");
        write(root, ".ratchet/projects/typo.yaml", "workdri: app\n");
        write(home.path(), "projects/web.yaml", "cwd: /srv/web\n");
        write(home.path(), "projects/rel.yaml", "cwd: relative\n");
        write(home.path(), "projects/ops.yml", "cwd: /srv/ops\nname: ops\n");
        let c = load(root, home.path());
        let names: Vec<&str> = c.projects.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web", "ops"]);
        let web = c.get("web").unwrap();
        assert_eq!(web.workdir, root.join("app"));
        assert_eq!(web.allowed(), [root.join("app"), root.join("shared"), PathBuf::from("/opt/data")]);
        assert_eq!((web.teams.as_slice(), web.task.as_deref()), (&["code-gen".to_string()][..], Some("Build it")));
        assert_eq!(c.get("ops").unwrap().workdir, PathBuf::from("/srv/ops"));
        assert_eq!(c.shadowed.len(), 1);
        let why =
            |f: &str| c.skipped.iter().find(|s| s.source.ends_with(f)).map(|s| s.reason.clone()).unwrap_or_default();
        assert!(!why("bad.yaml").is_empty());
        assert!(why("typo.yaml").contains("workdri"), "{}", why("typo.yaml"));
        assert!(why("rel.yaml").contains("absolute"), "{}", why("rel.yaml"));
    }
}
