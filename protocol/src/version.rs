//! Release versions, as they appear as folder names in a Pycom-style release
//! tree (`1.0.0`, `1.0.1b`, `1.10.0`, `1.2.0-rc.1`).
//!
//! # Validity
//!
//! A [`Version`] is any string that can safely name a folder of the release
//! tree and looks like a version at all. [`Version::parse`] rejects, with a
//! [`VersionError`]:
//!
//! - the empty string, and strings longer than [`Version::MAX_LEN`] bytes;
//! - path separators (`/`, `\`), `..`, and a leading `.` (hidden folders
//!   such as `.git`);
//! - control characters and whitespace;
//! - strings without an ASCII digit, so that sibling folders like `docs` or
//!   `backup` are not mistaken for versions.
//!
//! Everything else is accepted: letters (ASCII or not), `-`, `+`, `_`, `~`…
//!
//! # Order
//!
//! Release folders are named by hand: most are semantic versions, older ones
//! use Pycom's suffix style (`1.0.1b`, `1.0RC1`), the kind of string Python's
//! `distutils.version.LooseVersion` was written for. Plain string order gets
//! `1.9.0` vs `1.10.0` wrong, and simply using semver precedence when both
//! sides are semver and `LooseVersion` otherwise is not even transitive:
//! `1.2.0-rc.1 < 1.2.0` (semver), `1.2.0 < 1.2.0-` (`LooseVersion`: a prefix
//! sorts first), yet `1.2.0- < 1.2.0-rc.1` (`LooseVersion`: `-` is a prefix
//! of `-`, `rc`, `1`). Sorting with such a comparison gives results that
//! depend on the input order.
//!
//! Instead, every version is mapped once, when it is parsed, to a *sort key*:
//! a list of tokens drawn from a single totally ordered alphabet. Versions are
//! ordered by their keys, lexicographically, which is a total order whatever
//! scheme produced each key.
//!
//! ## Tokens
//!
//! 1. A strict semantic version (one accepted by [`semver::Version::parse`],
//!    e.g. `1.2.0`, `1.2.0-rc.1`, `1.2.0+build5`) gives `Num(major)`,
//!    `Num(minor)`, `Num(patch)`; then, if it has a pre-release, `Pre`
//!    followed by one token per dot-separated identifier: `PreNum(n)` for a
//!    numeric identifier, `PreStr(s)` for any other. Build metadata gives no
//!    token; it only matters through the final tie-break.
//! 2. Any other string is split as `LooseVersion` splits it (Python's
//!    `re.split(r'(\d+|[a-z]+|\.)')`, dropping empty parts and dots), except
//!    that only ASCII digits count as digits: maximal runs of ASCII digits
//!    give `Num`, maximal runs of `a`–`z` give `Str`, each `.` is dropped, and
//!    every maximal run of other characters gives a `Str` of that run. So
//!    `1.0.1b` → `1 0 1 "b"`, `1.0RC1` → `1 0 "RC" 1`, `1.2.0-` → `1 2 0 "-"`.
//!
//! ## Comparing keys
//!
//! Keys are compared token by token; when one key runs out it is treated as
//! padded with `End` tokens. Tokens of different kinds compare by kind,
//!
//! ```text
//! Pre < End < PreNum < PreStr < Str < Num
//! ```
//!
//! and tokens of the same kind by value: numbers numerically whatever their
//! length (leading zeros ignored), strings bytewise, which is code point order
//! as in Python. Each rank has a reason:
//!
//! - `Pre < End`: a pre-release comes before its release,
//!   `1.2.0-rc.1 < 1.2.0`.
//! - `End < PreNum < PreStr`: semver pre-release precedence. Fewer identifiers
//!   sort first when the others are equal (`1.0.0-alpha < 1.0.0-alpha.1`), and
//!   numeric identifiers sort before alphanumeric ones
//!   (`1.0.0-alpha.1 < 1.0.0-alpha.beta`). Pre-release tokens only ever follow
//!   `Pre`, which only semantic versions produce, so they are never compared
//!   with `Str` or `Num`; their rank above those is immaterial.
//! - `End < Str` and `End < Num`: as in `LooseVersion` (Python list order), a
//!   version that is a prefix of another sorts first: `1.0.1 < 1.0.1b`,
//!   `1.0 < 1.0.1`.
//! - `Str < Num`: where `LooseVersion` would raise `TypeError` comparing a
//!   number with a string at the same position, letters sort first, so a
//!   lettered release stays before the next numbered one: `1.0a < 1.0.1`.
//!
//! Consequently: numeric components compare as numbers (`1.9.0 < 1.10.0`),
//! semver precedence holds between semantic versions (`1.0.0-alpha <
//! 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 <
//! 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0`), `LooseVersion` order holds between
//! other strings wherever `LooseVersion` does not fail, and the trap above
//! resolves to `1.2.0-rc.1 < 1.2.0 < 1.2.0-`.
//!
//! ## Tie-break
//!
//! Different strings can have equal keys: `1.0` and `01.0`, `1.2.0` and
//! `1.2.0+build5`. Such versions are ordered by their raw bytes (`01.0 <
//! 1.0`, `1.2.0 < 1.2.0+build5`), so two versions compare equal exactly when
//! their strings are equal, consistently with [`Eq`] and [`Hash`].

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, Serializer};

/// A validated release version, such as `1.0.0`, `1.0.1b` or `1.2.0-rc.1`.
///
/// Equality and hashing are those of the underlying string; the order is the
/// total order described in the [module docs](self).
///
/// It serializes as a plain string; deserializing validates.
///
/// ```
/// use otavan_protocol::Version;
/// let parse = |s: &str| s.parse::<Version>().unwrap();
/// assert!(parse("1.9.0") < parse("1.10.0"));
/// assert!(parse("1.0.1") < parse("1.0.1b"));
/// assert!(parse("1.2.0-rc.1") < parse("1.2.0"));
/// assert!("docs".parse::<Version>().is_err());
/// ```
#[derive(Clone)]
pub struct Version {
    raw: String,
    key: Vec<Token>,
}

impl Version {
    /// The maximum length of a version, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Parses and validates a version string.
    ///
    /// # Errors
    ///
    /// Returns a [`VersionError`] saying why `s` is not a valid version.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        validate(s)?;
        Ok(Self::from_valid(s.to_owned()))
    }

    /// The version string, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn from_valid(raw: String) -> Self {
        let key = match semver::Version::parse(&raw) {
            Ok(semver) => semver_key(&semver),
            Err(_) => loose_key(&raw),
        };
        Self { raw, key }
    }
}

/// Why a string is not a valid [`Version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// The string is empty.
    Empty,
    /// The string is longer than [`Version::MAX_LEN`] bytes.
    TooLong {
        /// The length of the string, in bytes.
        len: usize,
    },
    /// The string contains a path separator, `/` or `\`.
    PathSeparator,
    /// The string contains a control character or whitespace.
    ControlOrWhitespace {
        /// The first offending character.
        ch: char,
    },
    /// The string contains `..`.
    DotDot,
    /// The string starts with `.`, like a hidden folder.
    LeadingDot,
    /// The string contains no ASCII digit, so it does not look like a version.
    NoDigit,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("version is empty"),
            Self::TooLong { len } => write!(
                f,
                "version is {len} bytes long, more than the limit of {}",
                Version::MAX_LEN
            ),
            Self::PathSeparator => f.write_str("version contains a path separator (`/` or `\\`)"),
            Self::ControlOrWhitespace { ch } => write!(
                f,
                "version contains whitespace or a control character ({ch:?})"
            ),
            Self::DotDot => f.write_str("version contains `..`"),
            Self::LeadingDot => f.write_str("version starts with `.`"),
            Self::NoDigit => f.write_str("version contains no digit (0-9)"),
        }
    }
}

impl std::error::Error for VersionError {}

fn validate(s: &str) -> Result<(), VersionError> {
    if s.is_empty() {
        return Err(VersionError::Empty);
    }
    if s.len() > Version::MAX_LEN {
        return Err(VersionError::TooLong { len: s.len() });
    }
    if s.contains(['/', '\\']) {
        return Err(VersionError::PathSeparator);
    }
    if let Some(ch) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(VersionError::ControlOrWhitespace { ch });
    }
    if s.contains("..") {
        return Err(VersionError::DotDot);
    }
    if s.starts_with('.') {
        return Err(VersionError::LeadingDot);
    }
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return Err(VersionError::NoDigit);
    }
    Ok(())
}

/// One element of a sort key.
///
/// The declaration order of the variants is the order between kinds (the
/// derived `Ord` compares the variant first, then the value); see the module
/// docs for why it is this one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    /// Start of a semver pre-release.
    Pre,
    /// Padding past the end of a key; never stored in one.
    End,
    /// Numeric semver pre-release identifier.
    PreNum(Number),
    /// Alphanumeric semver pre-release identifier.
    PreStr(String),
    /// Run of letters or other characters.
    Str(String),
    /// Version number component.
    Num(Number),
}

/// A non-negative integer of any size, ordered numerically.
///
/// Holds the decimal digits without leading zeros (zero is the empty string),
/// so a longer string is a larger number and equal lengths compare bytewise.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Number(String);

impl Number {
    fn new(digits: &str) -> Self {
        Self(digits.trim_start_matches('0').to_owned())
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sort key of a strict semantic version (rule 1 of the module docs).
fn semver_key(version: &semver::Version) -> Vec<Token> {
    let mut key: Vec<Token> = [version.major, version.minor, version.patch]
        .into_iter()
        .map(|n| Token::Num(Number::new(&n.to_string())))
        .collect();
    if !version.pre.is_empty() {
        key.push(Token::Pre);
        key.extend(version.pre.as_str().split('.').map(pre_release_token));
    }
    key
}

fn pre_release_token(identifier: &str) -> Token {
    if identifier.bytes().all(|b| b.is_ascii_digit()) {
        Token::PreNum(Number::new(identifier))
    } else {
        Token::PreStr(identifier.to_owned())
    }
}

/// The classes of characters whose maximal runs form `LooseVersion` parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Digit,
    Lower,
    Dot,
    Other,
}

impl CharClass {
    fn of(c: char) -> Self {
        match c {
            '0'..='9' => Self::Digit,
            'a'..='z' => Self::Lower,
            '.' => Self::Dot,
            _ => Self::Other,
        }
    }
}

/// Sort key of any other string, split like `LooseVersion` (rule 2).
fn loose_key(s: &str) -> Vec<Token> {
    let mut key = Vec::new();
    let mut rest = s;
    while let Some(first) = rest.chars().next() {
        let class = CharClass::of(first);
        let run_len = rest
            .find(|c| CharClass::of(c) != class)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(run_len);
        match class {
            CharClass::Digit => key.push(Token::Num(Number::new(run))),
            CharClass::Lower | CharClass::Other => key.push(Token::Str(run.to_owned())),
            CharClass::Dot => {}
        }
        rest = tail;
    }
    key
}

/// Lexicographic order of keys, the shorter one padded with [`Token::End`].
fn compare_keys(a: &[Token], b: &[Token]) -> Ordering {
    static END: Token = Token::End;
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&END).cmp(b.get(i).unwrap_or(&END)))
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.key, &other.key).then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Version").field(&self.raw).finish()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.raw
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Version {
    type Error = VersionError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate(&s)?;
        Ok(Self::from_valid(s))
    }
}

impl From<Version> for String {
    fn from(version: Version) -> Self {
        version.raw
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::try_from(raw).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Vec<Token> {
        Version::parse(s).unwrap().key
    }

    fn num(digits: &str) -> Token {
        Token::Num(Number::new(digits))
    }

    fn string(s: &str) -> Token {
        Token::Str(s.to_owned())
    }

    #[test]
    fn semver_keys() {
        assert_eq!(key("1.2.0"), [num("1"), num("2"), num("0")]);
        assert_eq!(key("1.2.0+build5"), [num("1"), num("2"), num("0")]);
        assert_eq!(
            key("1.2.0-rc.1+b"),
            [
                num("1"),
                num("2"),
                num("0"),
                Token::Pre,
                Token::PreStr("rc".to_owned()),
                Token::PreNum(Number::new("1")),
            ]
        );
    }

    #[test]
    fn loose_keys() {
        assert_eq!(key("1.0.1b"), [num("1"), num("0"), num("1"), string("b")]);
        assert_eq!(key("1.0RC1"), [num("1"), num("0"), string("RC"), num("1")]);
        assert_eq!(
            key("1.0Rc2"),
            [num("1"), num("0"), string("R"), string("c"), num("2")]
        );
        assert_eq!(key("1.2.0-"), [num("1"), num("2"), num("0"), string("-")]);
        assert_eq!(
            key("2.0b1pl0"),
            [
                num("2"),
                num("0"),
                string("b"),
                num("1"),
                string("pl"),
                num("0")
            ]
        );
        assert_eq!(
            key("1.0-Ü_x~"),
            [num("1"), num("0"), string("-Ü_"), string("x"), string("~")]
        );
        assert_eq!(key("01.0"), key("1.0"));
    }

    #[test]
    fn numbers_compare_numerically() {
        let n = Number::new;
        assert!(n("9") < n("10"));
        assert_eq!(n("007"), n("7"));
        assert_eq!(n("000"), n("0"));
        assert!(n("0") < n("1"));
        assert!(
            n("99999999999999999999999999999999999999999")
                < n("100000000000000000000000000000000000000000")
        );
        assert!(n("123456789012345678901234567890") < n("123456789012345678901234567891"));
    }

    #[test]
    fn kinds_are_ordered() {
        let order = [
            Token::Pre,
            Token::End,
            Token::PreNum(Number::new("99")),
            Token::PreStr("a".to_owned()),
            string("A"),
            num("0"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn shorter_key_is_padded_with_end() {
        assert_eq!(
            compare_keys(&[num("1")], &[num("1"), string("a")]),
            Ordering::Less
        );
        assert_eq!(
            compare_keys(&[num("1"), Token::Pre], &[num("1")]),
            Ordering::Less
        );
        assert_eq!(compare_keys(&[], &[]), Ordering::Equal);
    }

    #[test]
    fn error_messages() {
        assert_eq!(VersionError::Empty.to_string(), "version is empty");
        assert_eq!(
            VersionError::TooLong { len: 65 }.to_string(),
            "version is 65 bytes long, more than the limit of 64"
        );
        assert_eq!(
            VersionError::ControlOrWhitespace { ch: '\n' }.to_string(),
            "version contains whitespace or a control character ('\\n')"
        );
    }
}
