//! CSV input with named columns and line numbers, so every bad row can be
//! reported where the operator will look for it.

use std::fmt;
use std::path::{Path, PathBuf};

use csv::StringRecord;

/// Why an input file cannot be used. Nothing is written when reading
/// fails.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: csv::Error,
    },
    /// The header or some rows are wrong.
    #[error("{}: {problems}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, by line.
        problems: Problems,
    },
    /// The file may not be used as it is (a key file others may read).
    #[error("{}: {message}", path.display())]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Problems found in a file, each with its line number (1 is the header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<(u64, String)>);

/// At most this many problems are listed; the rest are counted.
const LISTED: usize = 20;

impl Problems {
    /// Records a problem on `line`.
    pub fn add(&mut self, line: u64, message: impl Into<String>) {
        self.0.push((line, message.into()));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err` naming `path` when there are problems.
    pub fn check(self, path: &Path) -> Result<(), InputError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(InputError::Invalid {
                path: path.to_path_buf(),
                problems: self,
            })
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "1 problem")?,
            n => write!(f, "{n} problems")?,
        }
        for (line, message) in self.0.iter().take(LISTED) {
            write!(f, "\n  line {line}: {message}")?;
        }
        if self.0.len() > LISTED {
            write!(f, "\n  ... and {} more", self.0.len() - LISTED)?;
        }
        Ok(())
    }
}

/// A CSV file read whole: its columns and its rows with line numbers.
#[derive(Debug)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<(u64, StringRecord)>,
}

impl Table {
    /// Reads `path`, whose header must name every `required` column and may
    /// name `optional` ones, and nothing else. Fields are trimmed; empty
    /// lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    ///
    /// [`InputError::Read`], or [`InputError::Invalid`] for a wrong header
    /// or rows with the wrong number of fields.
    pub fn read(path: &Path, required: &[&str], optional: &[&str]) -> Result<Table, InputError> {
        let bytes = std::fs::read(path).map_err(|e| InputError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Table::parse(path, &bytes, required, optional)
    }

    /// As [`Table::read`], for text already in memory (a store's CSV
    /// export); `path` names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Table::read`].
    pub fn parse(
        path: &Path,
        bytes: &[u8],
        required: &[&str],
        optional: &[&str],
    ) -> Result<Table, InputError> {
        let read_error = |source| InputError::Read {
            path: path.to_path_buf(),
            source,
        };
        // The reader's own line numbers skip blank and comment lines: count
        // the newlines before each record instead.
        let newlines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        // A record's position is where the reader started looking for it,
        // before the blank and comment lines it skipped.
        let line_at = |byte: u64| {
            let mut line = newlines.partition_point(|&i| (i as u64) < byte);
            loop {
                let start = if line == 0 { 0 } else { newlines[line - 1] + 1 };
                let end = newlines.get(line).copied().unwrap_or(bytes.len());
                let text = bytes[start.min(end)..end].trim_ascii();
                if line >= newlines.len() || !(text.is_empty() || text.starts_with(b"#")) {
                    return line as u64 + 1;
                }
                line += 1;
            }
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .flexible(true)
            .from_reader(bytes);
        let columns: Vec<String> = reader
            .headers()
            .map_err(read_error)?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut problems = Problems::default();
        for name in required {
            if !columns.iter().any(|c| c == name) {
                problems.add(1, format!("the header has no {name:?} column"));
            }
        }
        for (i, name) in columns.iter().enumerate() {
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                let known: Vec<&str> = required.iter().chain(optional).copied().collect();
                problems.add(
                    1,
                    format!(
                        "unknown column {name:?} (the columns are {})",
                        known.join(", ")
                    ),
                );
            }
            if columns[..i].contains(name) {
                problems.add(1, format!("column {name:?} appears twice"));
            }
        }
        std::mem::take(&mut problems).check(path)?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(read_error)?;
            let line = record.position().map_or(0, |p| line_at(p.byte()));
            if record.len() != columns.len() {
                problems.add(
                    line,
                    format!("{} fields, the header has {}", record.len(), columns.len()),
                );
                continue;
            }
            rows.push((line, record));
        }
        problems.check(path)?;
        Ok(Table { columns, rows })
    }

    /// The rows, with their line numbers.
    pub fn rows(&self) -> impl Iterator<Item = (u64, Field<'_>)> {
        self.rows.iter().map(|(line, record)| {
            (
                *line,
                Field {
                    columns: &self.columns,
                    record,
                },
            )
        })
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row's fields, by column name.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    columns: &'a [String],
    record: &'a StringRecord,
}

impl<'a> Field<'a> {
    /// The value of column `name`; `None` when the column is absent or the
    /// field empty.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.record.get(i).filter(|v| !v.is_empty())
    }

    /// The value of column `name`, or a message saying it is missing.
    pub fn require(&self, name: &str) -> Result<&'a str, String> {
        self.get(name).ok_or_else(|| format!("{name} is empty"))
    }

    /// Column `name` as a finite number.
    pub fn number(&self, name: &str) -> Result<f64, String> {
        let text = self.require(name)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{name} {text:?} is not a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Table, InputError> {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        Table::read(&path, &["a", "b"], &["c"])
    }

    #[test]
    fn rows_keep_their_line_numbers() {
        let t = table("a,b\n1, 2\n\n# note\n3,4\n").unwrap();
        let rows: Vec<_> = t.rows().map(|(l, f)| (l, f.get("b"), f.get("c"))).collect();
        assert_eq!(rows, [(2, Some("2"), None), (5, Some("4"), None)]);
    }

    #[test]
    fn header_and_field_count_problems_are_all_reported() {
        let error = table("a,x,x\n").unwrap_err().to_string();
        assert!(
            error.contains("line 1: the header has no \"b\" column"),
            "{error}"
        );
        assert!(error.contains("unknown column \"x\""), "{error}");
        assert!(error.contains("appears twice"), "{error}");
        let error = table("a,b\n1,2\n1\n1,2,3\n").unwrap_err().to_string();
        assert!(error.contains("2 problems"), "{error}");
        assert!(error.contains("line 3: 1 fields"), "{error}");
        assert!(error.contains("line 4: 3 fields"), "{error}");
    }
}
