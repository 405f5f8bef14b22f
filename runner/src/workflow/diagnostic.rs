//! [`WorkflowError`]: a validation error that points at a place in a workflow file, and the
//! "did you mean" helper.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// A place in a workflow file: 1-based line and column plus the byte range for the snippet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
    pub offset: usize,
    pub len: usize,
}

impl Pos {
    pub fn from_location(loc: &serde_saphyr::Location) -> Option<Pos> {
        if loc.line() == 0 {
            return None;
        }
        let span = loc.span();
        Some(Pos {
            line: loc.line(),
            column: loc.column(),
            offset: span.byte_offset().unwrap_or(0) as usize,
            len: span.byte_len().unwrap_or(0) as usize,
        })
    }

    pub fn start() -> Pos {
        Pos { line: 1, column: 1, offset: 0, len: 0 }
    }
}

/// The text of a workflow file, shared by every error that points into it.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// One problem in a workflow, with where it is, what to do, and the source for a snippet.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub struct WorkflowError {
    pub message: String,
    pub file: PathBuf,
    pub pos: Option<Pos>,
    #[source_code]
    source_code: Option<NamedSource<Arc<str>>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{}:{}: {}", self.file.display(), pos.line, pos.column, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl WorkflowError {
    /// Creates an error at `pos` in `source`; `label` is the short text under the snippet.
    pub fn at(source: &Source, pos: Option<Pos>, message: impl Into<String>, label: impl Into<String>) -> Self {
        let span = pos.map(|p| SourceSpan::new(p.offset.into(), p.len.max(1)));
        WorkflowError {
            message: message.into(),
            file: source.path.clone(),
            pos,
            source_code: Some(NamedSource::new(source.path.display().to_string(), source.text.clone())),
            span,
            label: label.into(),
            help: None,
        }
    }

    /// Creates an error about the workflow as a whole or about a command-line option.
    pub fn general(file: &Path, message: impl Into<String>) -> Self {
        WorkflowError {
            message: message.into(),
            file: file.to_path_buf(),
            pos: None,
            source_code: None,
            span: None,
            label: String::new(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `X`?" when one of `candidates` is close to `wrong`.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(wrong, candidates) {
            Some(best) => self.with_help(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    /// Renders the error with its snippet as the CLI prints it, without colors.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Long messages stay on one line: wrapping at a fixed width would split file paths and
        // make the output depend on where the workflow lives.
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_wrap_lines(false);
        handler.render_report(&mut out, self).expect("rendering to a String cannot fail");
        out
    }
}

/// All problems found in one workflow.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_list(.0))]
pub struct WorkflowErrors(pub Vec<WorkflowError>);

fn render_list(errors: &[WorkflowError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl From<WorkflowError> for WorkflowErrors {
    fn from(error: WorkflowError) -> Self {
        WorkflowErrors(vec![error])
    }
}

/// Returns the candidate closest to `wrong` when it is a likely typo. A typo is an edit
/// distance of at most a third of the longer name (a swap of neighbours counts as one edit), or
/// one name being a prefix of the other (`out` for `output`).
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(wrong, candidate);
        let limit = (wrong.chars().count().max(candidate.chars().count()) / 3).max(1);
        let shorter = wrong.len().min(candidate.len());
        let prefix = shorter >= 3 && (wrong.starts_with(candidate) || candidate.starts_with(wrong));
        if (distance <= limit || prefix) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance over characters: Levenshtein plus adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos() {
        let names = ["import-corpus", "corpus-stats", "word-counts"];
        assert_eq!(did_you_mean("improt-corpus", names), Some("import-corpus"));
        assert_eq!(did_you_mean("corpus-stat", names), Some("corpus-stats"));
        assert_eq!(did_you_mean("wrod-counts", names), Some("word-counts"));
        assert_eq!(did_you_mean("finetune", names), None);
    }
}
