//! `dsrctl explain [CODE]`: the explanation of a diagnostic code, like `rustc --explain`.

use anyhow::{Result, bail};

use super::Outcome;
use super::args::ExplainArgs;
use crate::load::Code;

/// Prints the explanation of one code, or every code with its summary.
pub fn explain(args: &ExplainArgs) -> Result<Outcome> {
    let Some(name) = &args.code else {
        out!("{}", list());
        return Ok(Outcome::Ok);
    };
    match Code::from_name(name) {
        Some(code) => {
            out!("{}", explanation(code));
            Ok(Outcome::Ok)
        }
        None => bail!("{}", unknown(name)),
    }
}

/// `code: summary`, a blank line, the explanation.
fn explanation(code: Code) -> String {
    format!("{code}: {}\n\n{}", code.summary(), code.explanation())
}

/// Every code and its summary, aligned, in the order of the table.
fn list() -> String {
    let width = Code::ALL
        .iter()
        .map(|c| c.as_str().len())
        .max()
        .unwrap_or(0);
    Code::ALL
        .iter()
        .map(|c| format!("{:width$}  {}\n", c.as_str(), c.summary()))
        .collect()
}

/// The error for a name that is no code, with the nearest codes.
fn unknown(name: &str) -> String {
    let near = Code::nearest(name);
    let mut msg = format!("`{name}` is not a diagnostic code");
    match near.as_slice() {
        [] => {}
        [one] => msg.push_str(&format!("; did you mean `{one}`?")),
        many => {
            let names: Vec<String> = many.iter().map(|c| format!("`{c}`")).collect();
            msg.push_str(&format!("; did you mean one of {}?", names.join(", ")));
        }
    }
    msg.push_str("\n`dsrctl explain` lists every code");
    msg
}
