//! SQL text and results as the original lava handles them: statement
//! splitting with `sqlparse`'s boundaries ([`split`]), Python's CSV writer
//! ([`csv`]) and Python's `str()` of database values ([`pytext`]).

pub mod csv;
pub mod pytext;
pub mod split;
