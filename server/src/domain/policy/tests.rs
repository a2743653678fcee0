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

/// Issue 17: Condition blocks as IAM reads them. The cases and IAM's answers are those
/// getmoto/moto pull 2269 checked against IAM (tests/test_iam/test_iam_policies.py); dates
/// are tested further in policy/date.rs.
#[test]
fn conditions_accepted_and_refused_as_iam_does() {
    let with = |condition: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{condition}}}}}"#
        )
    };
    let accepted = [
        "{}",
        r#"{"DateGreaterThan":{}}"#,
        r#"{"DateGreaterThan":{"a":[]}}"#,
        r#"{"x":{},"y":{}}"#,
        r#"{"StringEqualsIfExists":{"a":"asf"}}"#,
        r#"{"ForAnyValue:StringEqualsIfExists":{"a":"asf"}}"#,
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":"Department"}}"#,
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2017-07-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2017-12-31T23:59:59Z"}}"#,
        r#"{"DateLessThanEquals":{"a":"2016-12-13T21:20:37.593194+00:00"}}"#,
        r#"{"DateGreaterThan":{"a":"01T"}}"#,
        r#"{"DateLessThan":{"aws:EpochTime":1577836800}}"#,
        r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}"#,
        r#"{"Bool":{"aws:SecureTransport":false}}"#,
        r#"{"NumericLessThan":{"s3:max-keys":["10",20]}}"#,
    ];
    for condition in accepted {
        PolicyDocument::parse(&with(condition), PolicyType::Identity)
            .unwrap_or_else(|e| panic!("{condition}: {e:?}"));
    }
    let refused = [
        ("[]", "Syntax errors in policy."),
        (r#""a""#, "Syntax errors in policy."),
        (r#"{"a":"b"}"#, "Syntax errors in policy."),
        (r#"{"DateGreaterThan":"b"}"#, "Syntax errors in policy."),
        (r#"{"DateGreaterThan":[]}"#, "Syntax errors in policy."),
        (r#"{"DateGreaterThan":{"a":{}}}"#, "Syntax errors in policy."),
        (r#"{"StringEquals":{"a":[["b"]]}}"#, "Syntax errors in policy."),
        (r#"{"x":{"a":"1"}}"#, "Syntax errors in policy."),
        (r#"{"StringEqualz":{"aws:username":"a"}}"#, "Syntax errors in policy."),
        (r#"{"ForAnyValue::StringEqualsIfExists":{"a":"asf"}}"#, "Syntax errors in policy."),
        (r#"{"DateGreaterThan":{"a":"sdfdsf"}}"#, "The policy failed legacy parsing"),
        (r#"{"DateLessThanEquals":{"a":"234-13"}}"#, "The policy failed legacy parsing"),
        (r#"{"DateLessThan":{"a":"9223372036854775808"}}"#, "The policy failed legacy parsing"),
        (r#"{"DateLessThan":{"a":["2020-01-01",true]}}"#, "The policy failed legacy parsing"),
    ];
    for (condition, message) in refused {
        assert_eq!(malformed(&with(condition), PolicyType::Identity), message, "{condition}");
    }
    // A stored document is read by its structure: a date IAM would now refuse is kept.
    let stored = with(r#"{"DateGreaterThan":{"a":"sdfdsf"}}"#);
    assert!(PolicyDocument::parse_stored(&stored, PolicyType::Identity).is_ok());
}

/// Issue 17: the principals a trust policy may name, with IAM's message for the others
/// (the forms: policy/principals.rs).
#[test]
fn trust_policy_principals_accepted_and_refused_as_iam_does() {
    let trusting = |principal: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    let accepted = [
        r#""*""#,
        r#"{"AWS":"*"}"#,
        r#"{"AWS":"123456789012"}"#,
        r#"{"AWS":"arn:aws:iam::123456789012:root"}"#,
        r#"{"AWS":["arn:aws:iam::123456789012:user/user-name","arn:aws:iam::123456789012:role/path/role-name"]}"#,
        r#"{"AWS":"arn:aws:sts::123456789012:assumed-role/role-name/role-session-name"}"#,
        r#"{"AWS":"arn:aws:sts::123456789012:federated-user/user-name"}"#,
        r#"{"Service":["ec2.amazonaws.com","aiops.alarms.cloudwatch.amazonaws.com"]}"#,
        r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
        r#"{"Federated":"arn:aws:iam::123456789012:saml-provider/corp"}"#,
        r#"{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}"#,
    ];
    for principal in accepted {
        PolicyDocument::parse(&trusting(principal), PolicyType::Trust)
            .unwrap_or_else(|e| panic!("{principal}: {e:?}"));
    }
    let refused = [
        (
            r#"{"AWS":"arn:aws:iam::123456789012:user/user-*"}"#,
            r#""AWS":"arn:aws:iam::123456789012:user/user-*""#,
        ),
        (r#"{"AWS":"arn:aws:iam::*:root"}"#, r#""AWS":"arn:aws:iam::*:root""#),
        (r#"{"AWS":"12345"}"#, r#""AWS":"12345""#),
        (
            r#"{"AWS":"arn:aws:iam::123456789012:group/devs"}"#,
            r#""AWS":"arn:aws:iam::123456789012:group/devs""#,
        ),
        (r#"{"AWS":"arn:aws-cn:iam::123456789012:root"}"#, r#""AWS":"arn:aws-cn:iam::123456789012:root""#),
        (
            r#"{"AWS":"arn:aws:sts::123456789012:assumed-role/only-role"}"#,
            r#""AWS":"arn:aws:sts::123456789012:assumed-role/only-role""#,
        ),
        (r#"{"Service":"ec2"}"#, r#""SERVICE":"ec2""#),
        (r#"{"Service":"*.amazonaws.com"}"#, r#""SERVICE":"*.amazonaws.com""#),
        (r#"{"Federated":"example.com"}"#, r#""FEDERATED":"example.com""#),
        (
            r#"{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#,
            r#""CANONICALUSER":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be""#,
        ),
    ];
    for (principal, named) in refused {
        assert_eq!(
            malformed(&trusting(principal), PolicyType::Trust),
            format!("Invalid principal in policy: {named}"),
            "{principal}"
        );
    }
    // NotPrincipal is not for trust policies; Sids follow IAM's alphabet there too.
    let not_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(malformed(not_principal, PolicyType::Trust), "Has prohibited field NotPrincipal");
    assert!(PolicyDocument::parse_stored(not_principal, PolicyType::Trust).is_ok());
    let sid = r#"{"Version":"2012-10-17","Statement":[{"Sid":"trust ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    assert!(malformed(sid, PolicyType::Trust).starts_with("Statement IDs (SID) must be alpha-numeric."));
    // A bucket policy may name an S3 canonical user, and its Sids are free text.
    let bucket = r#"{"Version":"2012-10-17","Statement":[{"Sid":"read it all","Effect":"Allow","Principal":{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    PolicyDocument::parse(bucket, PolicyType::Resource).unwrap();
}

/// Issue 17: a customer managed policy must be of version 2012-10-17; an inline policy may
/// still be of 2008-10-17 or name none (IAM's answers as getmoto/moto pull 2269 recorded
/// them, and AWS::IAM::ManagedPolicy requiring 2012-10-17).
#[test]
fn managed_policies_must_be_of_version_2012_10_17() {
    let body = r#""Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}"#;
    let message = "Policy document must be version 2012-10-17 or greater.";
    for version in ["", r#""Version":"2008-10-17","#] {
        let text = format!("{{{version}{body}}}");
        assert_eq!(PolicyDocument::parse_managed(&text).unwrap_err().message, message, "{text}");
        PolicyDocument::parse(&text, PolicyType::Identity).unwrap();
    }
    // The version is named before any error but a syntax error.
    let duplicate = r#"{"Statement":[{"Sid":"a","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"a","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    assert_eq!(PolicyDocument::parse_managed(duplicate).unwrap_err().message, message);
    assert_eq!(
        PolicyDocument::parse_managed(r#"{"Statement":[]}"#).unwrap_err().message,
        "Syntax errors in policy."
    );
    PolicyDocument::parse_managed(&format!(r#"{{"Version":"2012-10-17",{body}}}"#)).unwrap();
}

/// Issue 17: what IAM accepts and refuses in an identity policy, with IAM's own messages
/// (MalformedPolicyDocument), as its answers show them: "Resource … must be in ARN format or
/// \"*\"." (github.com/trussworks/terraform-aws-s3-anti-virus/issues/21), "Partition … is not
/// valid for resource …" (github.com/eksctl-io/eksctl/issues/4329, an ARN of the aws partition
/// refused in GovCloud), "IAM resource … cannot contain region information."
/// (github.com/cloud-gov/terraform-provision/pull/1838), "Actions/Condition can contain only
/// one colon." (github.com/garnaat/kappa/issues/111); the shapes of ARN, vendors and names,
/// each with IAM's answer, from the cases getmoto/moto pull 2269 checked against IAM
/// (tests/test_iam/test_iam_policies.py); the others in the tests above.
#[test]
fn identity_policies_accepted_and_refused_as_iam_does() {
    let statement = |action: &str, resource: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{action},"Resource":{resource}}}]}}"#
        )
    };
    let accepted = [
        statement(r#""s3:GetObject""#, r#""*""#),
        statement(r#""s3:Get*""#, r#""arn:aws:s3:::bucket/*""#),
        statement(r#""ec2:DescribeInstances""#, r#""arn:aws:ec2:us-east-1:123456789012:instance/*""#),
        statement(r#""iam:GetRole""#, r#""arn:aws:iam::123456789012:role/${aws:username}""#),
        statement(r#""iam:GetRole""#, r#""arn:*:iam::*:role/ops-*""#),
        statement(r#""s3:ListBucket""#, r#"["arn:aws:s3:::a","arn:aws:s3:::b"]"#),
        statement(r#""*""#, r#""arn:aws:logs:*:*:*""#),
        // Shapes IAM takes that look wrong (moto's checked cases).
        statement(r#""s3:ListBucket""#, r#""arn:aws:fdsasf""#),
        statement(r#""s3:ListBucket""#, r#""arn:aws:s33:::example_bucket""#),
        statement(r#""s3:ListBucket""#, r#""arn:aws:invalid-service:us-east-1::example_bucket""#),
        statement(r#""s3:ListBucket""#, r#""arn:aws:iam:::user/example_bucket""#),
        // S3's access points name a region and an account (AWSBackupAccessPointOperatorAccess,
        // an AWS managed policy, holds this one).
        statement(r#""s3:GetObject""#, r#""arn:aws:s3:*:*:accesspoint/*""#),
        statement(r#""iam: asdf safdsf af ""#, r#""*""#),
        statement(
            r#"["s3.s:ListBucket","s3-s:ListBucket","aaaaaadsfdsafsadfsadfaaaaa:ListBucket"]"#,
            r#""*""#,
        ),
    ];
    for text in &accepted {
        PolicyDocument::parse(text, PolicyType::Identity).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    }
    let refused = [
        (statement(r#""s3:GetObject""#, r#""bucket""#), r#"Resource bucket must be in ARN format or "*"."#),
        (
            statement(r#""s3:GetObject""#, r#""arn:aws""#),
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ),
        (statement(r#""s3:GetObject""#, r#""arn:aws:s3::example_bucket""#), "The policy failed legacy parsing"),
        (statement(r#""s3:GetObject""#, r#""arn:aws::fdsasf""#), "The policy failed legacy parsing"),
        (
            statement(r#""s3:GetObject""#, r#""arn:aws:s3:us-east-1::example_bucket""#),
            "Resource arn:aws:s3:us-east-1::example_bucket can not contain region information.",
        ),
        (
            statement(r#""iam:GetRole""#, r#""arn:aws:iam:::example_bucket""#),
            r#"IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/."#,
        ),
        (
            statement(r#""s3:GetObject""#, r#""a:bsdfdsafsad""#),
            r#"Partition "bsdfdsafsad" is not valid for resource "arn:bsdfdsafsad:*:*:*:*"."#,
        ),
        (
            statement(r#""s3:GetObject""#, r#""aws:s3:::example_bucket""#),
            r#"Partition "s3" is not valid for resource "arn:s3:::example_bucket:*"."#,
        ),
        (
            statement(r#""s3:GetObject""#, r#""a:b:c:d:e:f:g:h""#),
            r#"Partition "b" is not valid for resource "arn:b:c:d:e:f:g:h"."#,
        ),
        (statement(r#""s3:GetObject""#, r#""""#), r#"Resource  must be in ARN format or "*"."#),
        (statement(r#""a a:ListBucket""#, r#""*""#), "Vendor a a is not valid"),
        (
            statement(r#""s3:GetObject""#, r#""arn:aws-us-gov:s3:::bucket""#),
            r#"Partition "aws-us-gov" is not valid for resource "arn:aws-us-gov:s3:::bucket"."#,
        ),
        (
            statement(r#""s3:GetObject""#, r#""arn::s3:::bucket""#),
            r#"Partition "" is not valid for resource "arn::s3:::bucket"."#,
        ),
        (
            statement(r#""iam:GetRole""#, r#""arn:aws:iam:us-east-1:123456789012:role/x""#),
            "IAM resource arn:aws:iam:us-east-1:123456789012:role/x cannot contain region information.",
        ),
        (statement(r#""s3:Get:Object""#, r#""*""#), "Actions/Condition can contain only one colon."),
        (
            statement(r#""GetObject""#, r#""*""#),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.into(),
            "The policy failed legacy parsing",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"a-b","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.into(),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#.into(),
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (r#"{"Version":"2012-10-17","Statement":"#.into(), "Syntax errors in policy."),
    ];
    for (text, message) in &refused {
        assert_eq!(malformed(text, PolicyType::Identity), *message, "{text}");
    }
    // NotResource is held to the same grammar.
    let not_resource =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","NotResource":"bucket"}]}"#;
    assert_eq!(
        malformed(not_resource, PolicyType::Identity),
        r#"Resource bucket must be in ARN format or "*"."#
    );
}

/// A document stored before the validator grew stricter is read back by its structure, so
/// that its Deny statements still count.
#[test]
fn stored_documents_are_read_by_their_structure() {
    let stored = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"bucket"}]}"#;
    assert!(PolicyDocument::parse(stored, PolicyType::Identity).is_err());
    let doc = PolicyDocument::parse_stored(stored, PolicyType::Identity).unwrap();
    assert_eq!(doc.statements[0].effect, Effect::Deny);
    // Its structure is still held: no Principal in an identity policy, JSON that parses.
    let principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    assert!(PolicyDocument::parse_stored(principal, PolicyType::Identity).is_err());
    assert!(PolicyDocument::parse_stored("{", PolicyType::Identity).is_err());
}

/// Where each statement lies, as the simulator reports it: lines and columns from 1, the
/// column in characters, for a list of statements or a single one.
#[test]
fn statement_positions_are_lines_and_columns_of_their_braces() {
    let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"arn:aws:s3:::bücket\"},\n    {\n      \"Effect\": \"Deny\", \"Action\": \"iam:*\", \"Resource\": \"*\"\n    }\n  ]\n}";
    PolicyDocument::parse(text, PolicyType::Identity).unwrap();
    let at = |line, column| Position { line, column };
    assert_eq!(statement_positions(text), [(at(4, 5), at(4, 76)), (at(5, 5), at(7, 5))]);
    let single = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    assert_eq!(statement_positions(single), [(at(1, 37), at(1, 85))]);
    assert!(statement_positions("not json").is_empty());
}
