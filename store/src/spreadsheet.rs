//! Export cells made safe for spreadsheets (OWASP CSV injection).
//!
//! Operators open `/reports.csv` in spreadsheets, and the device id and
//! error text come from anyone on the van's WiFi. A cell that begins with
//! `=`, `+`, `-`, `@`, tab or carriage return would be read as a formula;
//! following the OWASP guidance it gets a leading `'`, which spreadsheets
//! show as text. Quoting of commas and quotes is left to the CSV writer.

use std::borrow::Cow;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell` as a spreadsheet will show it as text: with a leading `'` when it
/// begins with a formula character, unchanged otherwise.
pub(crate) fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formula_starts_get_a_quote_and_nothing_else_changes() {
        for hostile in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(hostile), format!("'{hostile}"));
        }
        for plain in ["", "70B3D57ED0001234", "1.0.0", "a=b", "sha1 mismatch"] {
            assert_eq!(neutralise(plain), plain);
        }
    }
}
