//! The error of the plain layer: a value that does not parse or does not
//! fit (or, in an OCI configuration, asks for what mydocker lacks), phrased
//! for the user. The runtime wraps it unchanged.

/// A value the user gave that the spec cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A user-supplied value did not parse or is out of range.
    #[error("invalid {what} {value:?}: {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// No command was given, and the image or rootfs directory (named) has no default.
    #[error(
        "no command given, and {0} has no default command: name one after it (for example `sh`)"
    )]
    NoCommand(String),
    /// An OCI `config.json` that does not parse, or holds a value that
    /// does not fit; `field` is its JSON path, empty for the whole file.
    #[error("config.json{}: {problem}", at(field))]
    Config { field: String, problem: String },
    /// An OCI `config.json` asks for what mydocker does not do.
    #[error("config.json: {field}: {why}")]
    Unsupported { field: String, why: String },
}

/// `: field` when there is a field to name.
fn at(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(": {field}")
    }
}

impl Error {
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidValue {
            what,
            value: value.into(),
            expected: expected.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
