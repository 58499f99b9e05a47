//! Reading a CloudFormation or SAM template (YAML or JSON) into the entry points the
//! exposure audit ranks, before anything is deployed (`dowguard audit --template`).
//!
//! - [`parse`] turns the text into one tree, YAML short forms as long forms;
//! - [`resolve`] resolves the intrinsic functions a template alone decides;
//! - [`entries`] reads the resources that are entry points (functions, function
//!   URLs, REST and HTTP API stages, their methods and routes, usage plans) into
//!   [`EntryPoint`]s, with SAM's `Globals` merged and its implicit APIs created.
//!
//! What the template does not decide is reported as a line of [`Scan::unresolved`]
//! and priced at its worst case, never guessed. Pure: the caller reads the file.

mod entries;
mod parse;
mod resolve;

use dowguard_domain::exposure::EntryPoint;

/// What a template read needs besides its text.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The region deployed to (`AWS::Region`, and the prices).
    pub region: String,
    /// `--parameter KEY=VALUE` values, overriding the parameters' `Default`.
    pub parameters: Vec<(String, String)>,
}

/// The entry points a template declares, and what it left undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Every entry point, as the live audit would see it once deployed.
    pub entries: Vec<EntryPoint>,
    /// One line per expression that could not be resolved: the resource, the
    /// property, the expression and the worst case taken instead.
    pub unresolved: Vec<String>,
}

/// Why a template could not be read. Each names the file or the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Neither YAML nor JSON.
    #[error("{file}: not YAML or JSON: {message}{}", at_line(.line))]
    NotParsed {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
        /// The line it stopped at.
        line: Option<usize>,
    },
    /// YAML or JSON, but not a template.
    #[error("{file}: not a CloudFormation template: {why}")]
    NotATemplate {
        /// The file.
        file: String,
        /// What is missing or wrong.
        why: String,
    },
    /// A property of the wrong type.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType {
        /// Where, e.g. `Resources.Foo.Properties.MemorySize`.
        path: String,
        /// What the property must be.
        expected: &'static str,
        /// What it is.
        got: String,
    },
    /// A value of the right type that is not valid there.
    #[error("{path}: {why}")]
    Invalid {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// A `--parameter` the template does not declare.
    #[error("--parameter {key}: {why}")]
    Parameter {
        /// The parameter's name.
        key: String,
        /// Why.
        why: String,
    },
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// Reads the template `text` (from `file`, for messages).
///
/// # Errors
///
/// [`TemplateError`] naming the file or the field: not YAML or JSON, no
/// `Resources`, a property of the wrong type, an unknown `--parameter`.
pub fn read(file: &str, text: &str, options: &Options) -> Result<Scan, TemplateError> {
    let tree = parse::parse(file, text)?;
    entries::read(file, &tree, options)
}
