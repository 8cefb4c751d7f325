//! Charts of a rehearsal (SVG and PNG).
