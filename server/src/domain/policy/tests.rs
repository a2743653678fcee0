use super::*;
use crate::domain::{ErrorCode, evaluation::trusts_service};

/// The trust policy the seeds save as ec2-trust-policy.json.
const EC2_TRUST: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "Service": "ec2.amazonaws.com" },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;

fn malformed(text: &str, kind: PolicyType) -> String {
    let err = PolicyDocument::parse(text, kind).unwrap_err();
    assert_eq!(err.code, ErrorCode::MalformedPolicyDocument, "{err:?}");
    err.message
}

#[test]
fn seed_trust_policy_is_accepted_and_trusts_ec2() {
    let doc = PolicyDocument::parse(EC2_TRUST, PolicyType::Trust).unwrap();
    assert!(trusts_service(&doc, EC2_SERVICE, &[]));
    assert!(!trusts_service(&doc, "lambda.amazonaws.com", &[]));
}

#[test]
fn trust_policy_grammar() {
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
            PolicyType::Trust
        ),
        "Missing required field Principal"
    );
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}]}"#,
            PolicyType::Trust
        ),
        "Has prohibited field Resource"
    );
    assert!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"s3:GetObject"}]}"#,
            PolicyType::Trust
        )
        .contains("s3:GetObject")
    );
}

#[test]
fn identity_policy_grammar() {
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity
        ),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            PolicyType::Identity
        ),
        "Policy statement must contain resources."
    );
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            PolicyType::Identity
        ),
        "Policy statement must contain actions."
    );
    // NotAction and NotResource stand in for Action and Resource.
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:s3:::b/*"}}"#,
        PolicyType::Identity,
    )
    .unwrap();
    assert_eq!(doc.statements[0].action, Patterns::AllBut(vec!["iam:*".into()]));
}

#[test]
fn versions_and_syntax() {
    assert_eq!(
        malformed(
            r#"{"Version":"2013-01-01","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity
        ),
        "The policy failed legacy parsing"
    );
    assert!(
        PolicyDocument::parse(
            r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity
        )
        .is_ok()
    );
    assert_eq!(malformed("{not json", PolicyType::Identity), "Syntax errors in policy.");
    assert_eq!(malformed(r#"{"Version":"2012-10-17"}"#, PolicyType::Identity), "Syntax errors in policy.");
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
            PolicyType::Identity
        ),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        malformed(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity
        ),
        "Invalid effect: Permit"
    );
    assert!(malformed(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
        PolicyType::Identity
    )
    .contains("unique"));
}

#[test]
fn deny_in_trust_policy_wins() {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:*"},
            {"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        PolicyType::Trust,
    )
    .unwrap();
    assert!(!trusts_service(&doc, EC2_SERVICE, &[]));
    assert!(trusts_service(&doc, "lambda.amazonaws.com", &[]));
}

#[test]
fn wildcards_follow_aws_case_rules() {
    assert!(wildcard_match("s3:Get*", "s3:getobject", true));
    assert!(!wildcard_match("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/k", false));
    assert!(wildcard_match("arn:aws:s3:::b?cket/*", "arn:aws:s3:::bucket/a/b", false));
    assert!(wildcard_match("*", "", false));
    assert!(!wildcard_match("iam:List*", "iam:CreateUser", true));
    assert!(wildcard_match("a*b*c", "axxbyyc", false));
    assert!(!wildcard_match("a*b*c", "axxbyy", false));
}

#[test]
fn size_ignores_whitespace() {
    assert_eq!(policy_size("{ \"a\" :\n\t1 }"), 7);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,200}") {
            let _ = PolicyDocument::parse(&text, PolicyType::Identity);
            let _ = PolicyDocument::parse(&text, PolicyType::Trust);
        }

        #[test]
        fn literal_pattern_matches_itself(s in "[a-zA-Z0-9:/_-]{0,40}") {
            prop_assert!(wildcard_match(&s, &s, false));
            prop_assert!(wildcard_match("*", &s, false));
        }
    }
}

#[test]
fn unknown_condition_operators_are_malformed() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}]}"#;
    let e = PolicyDocument::parse(text, PolicyType::Identity).unwrap_err();
    assert_eq!(e.message, "Invalid Condition type : StringEqualz");
}
