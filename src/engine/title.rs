//! A session title from its first prompt.

use super::content::ContentPart;

/// Longest title, in characters. Editors show titles in narrow lists.
const MAX_TITLE_CHARS: usize = 60;

/// The first non-empty line of the prompt's text, cut to a list-friendly length.
pub fn from_prompt(content: &[ContentPart]) -> Option<String> {
    let text = content.iter().find_map(|p| match p {
        ContentPart::Text { text } => text.lines().map(str::trim).find(|l| !l.is_empty()),
        _ => None,
    })?;
    let mut title: String = text.chars().take(MAX_TITLE_CHARS).collect();
    if text.chars().count() > MAX_TITLE_CHARS {
        title = title.trim_end().to_string();
        title.push('…');
    }
    Some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_empty_line() {
        let c = vec![ContentPart::text("\n  Fix the parser \nmore")];
        assert_eq!(from_prompt(&c).as_deref(), Some("Fix the parser"));
    }

    #[test]
    fn long_titles_are_cut_on_a_char_boundary() {
        let c = vec![ContentPart::text("é".repeat(100))];
        let t = from_prompt(&c).unwrap();
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn no_text_no_title() {
        assert_eq!(from_prompt(&[]), None);
    }
}
