//! The label a person sees for a session in `GET /v1/me/sessions`: the name their
//! app gave at sign-in, or a short label derived from the `User-Agent`. The raw
//! header is never stored: it can be long, and it fingerprints a device more
//! precisely than a person needs to recognise it.

/// The longest label kept.
pub const MAX_CHARS: usize = 64;

/// Checks a `device_name` sent at sign-in or registration.
pub fn parse_device_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty (leave it out instead)".into());
    }
    if name.chars().count() > MAX_CHARS {
        return Err(format!("must be at most {MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// A short label such as `Firefox on Windows`, `iPhone` or `okhttp`, or `None`
/// when the header says nothing usable.
pub fn from_user_agent(user_agent: &str) -> Option<String> {
    let ua = user_agent.get(..user_agent.len().min(512)).unwrap_or(user_agent);
    const PLATFORMS: [(&str, &str); 8] = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Macintosh", "Mac"),
        ("Mac OS X", "Mac"),
        ("Windows", "Windows"),
        ("Linux", "Linux"),
    ];
    // Order matters: Edge and Opera also say "Chrome"; Chrome also says "Safari".
    const BROWSERS: [(&str, &str); 6] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    let platform = PLATFORMS.iter().find(|(needle, _)| ua.contains(needle)).map(|(_, label)| *label);
    let browser = BROWSERS.iter().find(|(needle, _)| ua.contains(needle)).map(|(_, label)| *label);
    match (browser, platform) {
        (Some(browser), Some(platform)) if ua.starts_with("Mozilla/") => Some(format!("{browser} on {platform}")),
        (_, Some(platform)) => Some(platform.to_owned()),
        _ => product_name(ua),
    }
}

/// The first product token (`okhttp/4.12.0` → `okhttp`), if it is a plain name.
fn product_name(ua: &str) -> Option<String> {
    let first = ua.split_whitespace().next()?.split('/').next()?;
    let plain = first.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    (plain && !first.is_empty()).then(|| first.chars().take(32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_phones_get_a_short_label() {
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(from_user_agent(firefox).as_deref(), Some("Firefox on Windows"));
        let chrome_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(from_user_agent(chrome_mac).as_deref(), Some("Chrome on Mac"));
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0";
        assert_eq!(from_user_agent(edge).as_deref(), Some("Edge on Windows"));
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                             (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        assert_eq!(from_user_agent(safari_iphone).as_deref(), Some("Safari on iPhone"));
        assert_eq!(from_user_agent("Attune/1.4 CFNetwork/1490 Darwin/23.2.0 (iPhone)").as_deref(), Some("iPhone"));
        assert_eq!(from_user_agent("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)").as_deref(), Some("Android"));
    }

    #[test]
    fn other_clients_get_their_product_name_never_the_raw_header() {
        assert_eq!(from_user_agent("okhttp/4.12.0").as_deref(), Some("okhttp"));
        let long = format!("{}/1.0 {}", "x".repeat(100), "y".repeat(4000));
        assert_eq!(from_user_agent(&long).map(|l| l.len()), Some(32));
        assert_eq!(from_user_agent(""), None);
        assert_eq!(from_user_agent("<script>/1"), None);
    }

    #[test]
    fn device_names_are_trimmed_and_bounded() {
        assert_eq!(parse_device_name("  Sam's phone ").unwrap(), "Sam's phone");
        assert!(parse_device_name("   ").is_err());
        assert!(parse_device_name(&"a".repeat(65)).is_err());
        assert!(parse_device_name("a\nb").is_err());
    }
}
