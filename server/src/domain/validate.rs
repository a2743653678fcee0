//! AWS's input rules for names, paths, tags and durations, with AWS's messages.

use super::{Error, Result};

/// The character set of IAM entity names: `[\w+=,.@-]`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn constraint(field: &str, value: &str, constraint: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

/// AWS's ValidationError for a value outside a parameter's enum.
pub fn not_in_enum(field: &str, value: &str, allowed: &[&str]) -> Error {
    constraint(field, value, &format!("Member must satisfy enum value set: [{}]", allowed.join(", ")))
}

/// An IAM entity name of 1..=max characters of `[\w+=,.@-]`.
pub fn name(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(constraint(field, value, "Member must have length greater than or equal to 1"));
    }
    if value.chars().count() > max {
        return Err(constraint(
            field,
            value,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !value.chars().all(is_name_char) {
        return Err(constraint(field, value, "Member must satisfy regular expression pattern: [\\w+=,.@-]+"));
    }
    Ok(())
}

pub fn role_name(value: &str) -> Result<()> {
    name("roleName", value, 64)
}

pub fn user_name(value: &str) -> Result<()> {
    name("userName", value, 64)
}

pub fn group_name(value: &str) -> Result<()> {
    name("groupName", value, 128)
}

pub fn policy_name(value: &str) -> Result<()> {
    name("policyName", value, 128)
}

pub fn instance_profile_name(value: &str) -> Result<()> {
    name("instanceProfileName", value, 128)
}

/// A path: `/` or `/segments/`, 1..=512 characters of U+0021..=U+007E. Empty means `/`.
pub fn path(value: &str) -> Result<String> {
    if value.is_empty() {
        return Ok("/".to_string());
    }
    if value.len() > 512 {
        return Err(constraint("path", value, "Member must have length less than or equal to 512"));
    }
    let shaped = value.starts_with('/') && value.ends_with('/') && !value.contains("//");
    if !shaped || !value.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) {
        return Err(constraint(
            "path",
            value,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ));
    }
    Ok(value.to_string())
}

/// A path prefix for list calls: empty means all; otherwise it starts with `/`.
pub fn path_prefix(value: &str) -> Result<&str> {
    if value.is_empty() {
        return Ok("/");
    }
    if !value.starts_with('/') || value.len() > 512 {
        return Err(constraint(
            "pathPrefix",
            value,
            "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*",
        ));
    }
    Ok(value)
}

/// A description of at most 1,000 characters.
pub fn description(value: &str) -> Result<()> {
    if value.chars().count() > 1000 {
        return Err(constraint("description", value, "Member must have length less than or equal to 1000"));
    }
    Ok(())
}

/// A role's maximum session duration: 3,600..=43,200 seconds.
pub fn max_session_duration(value: i32) -> Result<()> {
    if value < 3600 {
        return Err(constraint(
            "maxSessionDuration",
            &value.to_string(),
            "Member must have value greater than or equal to 3600",
        ));
    }
    if value > 43_200 {
        return Err(constraint(
            "maxSessionDuration",
            &value.to_string(),
            "Member must have value less than or equal to 43200",
        ));
    }
    Ok(())
}

/// One tag: key 1..=128, value 0..=256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; the
/// `aws:` prefix is reserved.
pub fn tag(key: &str, value: &str) -> Result<()> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if key.is_empty() || key.chars().count() > 128 || !key.chars().all(allowed) {
        return Err(constraint(
            "tags.member.key",
            key,
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ and have length 1 to 128",
        ));
    }
    if value.chars().count() > 256 || !value.chars().all(allowed) {
        return Err(constraint(
            "tags.member.value",
            value,
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* and have length 0 to 256",
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(Error::invalid_input("User-defined tag keys can't start with 'aws:'."));
    }
    Ok(())
}

/// The page size of an IAM list call: MaxItems 1..=1000, default 100.
pub fn max_items(value: Option<i32>) -> Result<usize> {
    match value {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(constraint("maxItems", &n.to_string(), "Member must have value between 1 and 1000")),
    }
}

/// The page size of an EC2 describe call: MaxResults 5..=1000, default 1000.
pub fn max_results(value: Option<i32>) -> Result<usize> {
    match value {
        None => Ok(1000),
        Some(n) if (5..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(Error::invalid_parameter(format!(
            "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        ))),
    }
}

/// S3's general purpose bucket naming rules: 3-63 characters of lowercase letters, digits,
/// dots and hyphens, starting and ending with a letter or digit, no two adjacent dots, not
/// shaped like an IP address, none of S3's reserved prefixes and suffixes.
pub fn bucket_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| edge(b) || b == b'.' || b == b'-')
        && edge(bytes[0])
        && edge(bytes[bytes.len() - 1])
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    if valid {
        Ok(())
    } else {
        Err(super::Error::new(super::ErrorCode::InvalidBucketName, "The specified bucket is not valid."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_rules() {
        assert!(role_name("EC2RoleForApp").is_ok());
        assert!(role_name("a+=,.@-_1").is_ok());
        assert!(role_name(&"a".repeat(64)).is_ok());
        let long = role_name(&"a".repeat(65)).unwrap_err();
        assert!(long.message.contains("less than or equal to 64"), "{}", long.message);
        let bad = role_name("has space").unwrap_err();
        assert_eq!(bad.code, super::super::ErrorCode::ValidationError);
        assert!(bad.message.contains("regular expression pattern"));
        assert!(role_name("").is_err());
        assert!(policy_name(&"p".repeat(128)).is_ok());
    }

    #[test]
    fn paths_are_slash_delimited() {
        assert_eq!(path("").unwrap(), "/");
        assert!(path("/").is_ok());
        assert!(path("/app/web/").is_ok());
        assert!(path("app/").is_err());
        assert!(path("/app").is_err());
        assert!(path("/a//b/").is_err());
    }

    #[test]
    fn tags_and_durations() {
        assert!(tag("team", "payments").is_ok());
        assert_eq!(tag("aws:owner", "x").unwrap_err().code, super::super::ErrorCode::InvalidInput);
        assert!(tag("", "x").is_err());
        assert!(max_session_duration(3600).is_ok());
        assert!(max_session_duration(43_200).is_ok());
        assert!(max_session_duration(3599).is_err());
        assert!(max_session_duration(43_201).is_err());
        assert_eq!(max_items(None).unwrap(), 100);
        assert!(max_items(Some(0)).is_err());
        assert_eq!(max_results(None).unwrap(), 1000);
        assert!(max_results(Some(4)).is_err());
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for ok in ["abc", "my-bucket.logs", "a1b2", &"a".repeat(63)] {
            assert!(bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "a_b",
            "abc-s3alias",
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }
}
