//! Guesses of data categories and identities from column names and types, for drafts of
//! `dataset introspect` and the "looks personal" findings of `coverage`. Every guess is
//! marked for a person to review.

/// The category a column's name suggests, if it looks personal.
pub fn guess_category(column: &str, ty: &str) -> Option<&'static str> {
    let c = column.to_ascii_lowercase();
    // Keys and references hold no personal data of their own.
    if c == "id" || c.ends_with("_id") || c.ends_with("_key") {
        return None;
    }
    let words: Vec<&str> = c.split(|ch: char| !ch.is_ascii_alphanumeric()).collect();
    let has = |w: &str| words.contains(&w);
    let ends = |w: &str| c.ends_with(w);
    let text_like = {
        let t = ty.to_ascii_lowercase();
        t.contains("char") || t.contains("text") || t.contains("clob") || t.is_empty()
    };
    if has("email") || has("mail") || ends("email") {
        return Some("user.contact.email");
    }
    if has("phone") || has("mobile") || has("tel") || ends("phone") {
        return Some("user.contact.phone_number");
    }
    if has("street") || has("address") || has("addr") || ends("address") {
        return Some("user.contact.address.street");
    }
    if has("city") || has("town") {
        return Some("user.contact.address.city");
    }
    if has("zip") || has("postcode") || has("postal") {
        return Some("user.contact.address.postal_code");
    }
    if has("ip") || ends("ip_address") {
        return Some("user.device.ip_address");
    }
    if has("birth") || has("dob") || has("birthday") || has("birthdate") {
        return Some("user.demographic.date_of_birth");
    }
    if has("gender") || has("sex") {
        return Some("user.demographic.gender");
    }
    if has("iban") || has("card") || ends("last4") || has("account") && text_like {
        return Some("user.financial");
    }
    if has("password") || has("passwd") || has("secret") {
        return Some("user.authorization.credentials");
    }
    if has("lat")
        || has("lng")
        || has("lon")
        || has("latitude")
        || has("longitude")
        || has("location")
    {
        return Some("user.location");
    }
    if (has("name") || has("surname") || ends("name")) && text_like {
        return Some("user.name");
    }
    if text_like && (has("body") || has("message") || has("comment") || has("note") || has("notes"))
    {
        return Some("user.content");
    }
    None
}

/// The identity a column's name suggests (`email` for an email column).
pub fn guess_identity(column: &str) -> Option<&'static str> {
    let c = column.to_ascii_lowercase();
    (c == "email" || c == "email_address" || c == "mail").then_some("email")
}
