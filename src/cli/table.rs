//! Tables on a terminal: a header row, columns as wide as their widest cell, no borders, so
//! the output reads like `ps` or `git branch -v` and stays easy to `grep` and `cut`.

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, presets};

/// A table with these column headers, ready for rows.
pub fn new(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
        column.set_cell_alignment(CellAlignment::Left);
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
    t
}

/// The table as lines, each without trailing spaces.
pub fn render(t: &Table) -> String {
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = super::new(&["run", "status"]);
        t.add_row(vec!["8b8a17a618d0", "failed"]);
        t.add_row(vec!["1", "completed"]);
        assert_eq!(
            super::render(&t),
            "RUN           STATUS\n8b8a17a618d0  failed\n1             completed\n"
        );
    }
}
