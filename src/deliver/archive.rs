//! What the export package and its delivery share: file names made safe from service,
//! collection and request names, and the options of a zip entry.

use chrono::{DateTime, Utc};

/// A name safe as one path component on every platform, still recognisable.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() {
        "_".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Options of a deflated zip entry (large files allowed) stamped with `at`: zip times
/// have no zone (this is UTC) and a 2-second resolution.
pub fn zip_entry(at: DateTime<Utc>) -> zip::write::SimpleFileOptions {
    use chrono::{Datelike, Timelike};
    let field = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
    let stamp = u16::try_from(at.year())
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                field(at.month()),
                field(at.day()),
                field(at.hour()),
                field(at.minute()),
                field(at.second()),
            )
            .ok()
        })
        .unwrap_or_default();
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true)
        .last_modified_time(stamp)
}
