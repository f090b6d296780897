//! The formats of subject identities in a request. A malformed identity finds no one (or,
//! worse, someone else), so `jane.example.com` is an error, not an email address. Messages
//! name the identity, never its value: the value is personal data.

use email_address::{EmailAddress, Error as EmailError, Options};

/// Fewest digits in a phone number (short national numbers included).
const MIN_PHONE_DIGITS: usize = 5;
/// Most digits in a phone number (E.164).
const MAX_PHONE_DIGITS: usize = 15;

/// What is wrong with identity `name`'s value, as the end of a sentence about it; `None`
/// when it is well formed (or the identity has no known format).
pub fn format_problem(name: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None; // Reported as an empty value.
    }
    if value.trim() != value {
        return Some(format!("`{name}` has spaces at its start or end"));
    }
    if value.chars().any(char::is_control) {
        return Some(format!(
            "`{name}` holds a control character (a line break or tab)"
        ));
    }
    match name {
        "email" => {
            address_problem(value).map(|why| format!("`{name}` is not an email address: {why}"))
        }
        "user_principal_name" => address_problem(value)
            .map(|why| format!("`{name}` is not a user principal name (name@domain): {why}")),
        "phone" => phone_problem(value).map(|why| format!("`{name}` is not a phone number: {why}")),
        _ => None,
    }
}

/// Why a value is not an `name@domain` address.
fn address_problem(value: &str) -> Option<String> {
    let options = Options::default().without_display_text();
    let e = EmailAddress::parse_with_options(value, options).err()?;
    Some(
        match e {
            EmailError::MissingSeparator => "it has no `@`",
            EmailError::LocalPartEmpty => "nothing comes before the `@`",
            EmailError::DomainEmpty => "nothing comes after the `@`",
            EmailError::UnsupportedDisplayName | EmailError::MissingDisplayName => {
                "write the address alone"
            }
            EmailError::SubDomainEmpty | EmailError::DomainInvalidSeparator => {
                "its domain has an empty part (two dots, or a dot at an end)"
            }
            EmailError::InvalidCharacter => "it holds a character an address cannot have",
            EmailError::LocalPartTooLong
            | EmailError::DomainTooLong
            | EmailError::SubDomainTooLong => "it is too long",
            _ => "it is malformed",
        }
        .to_owned(),
    )
}

/// Why a value is not a phone number: digits with the usual separators, `+` for the
/// international form.
fn phone_problem(value: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '.' | '(' | ')');
    if !value.chars().all(allowed) {
        return Some("only digits, spaces, `+`, `-`, `.` and brackets".to_owned());
    }
    if value.chars().skip(1).any(|c| c == '+') {
        return Some("`+` comes only first".to_owned());
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
        return Some(format!(
            "it has {digits} digits ({MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} expected)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(format_problem("email", "jane@example.com"), None);
        assert_eq!(format_problem("email", "jane@localhost"), None);
        assert_eq!(
            format_problem("email", "jane.example.com").as_deref(),
            Some("`email` is not an email address: it has no `@`")
        );
        assert!(format_problem("email", "jane@@example.com").is_some());
        assert!(format_problem("email", "jane@example..com").is_some());
    }

    #[test]
    fn phones() {
        assert_eq!(format_problem("phone", "+44 20 7946 0958"), None);
        assert_eq!(format_problem("phone", "(020) 7946-0958"), None);
        assert!(format_problem("phone", "12").is_some());
        assert!(format_problem("phone", "44+20").is_some());
        assert!(format_problem("phone", "jane@example.com").is_some());
    }

    #[test]
    fn other_identities_have_no_format_but_no_stray_spaces() {
        assert_eq!(format_problem("object_id", "u-1"), None);
        assert!(format_problem("object_id", "u-1 ").is_some());
        assert!(format_problem("customer_no", "12\n34").is_some());
    }
}
