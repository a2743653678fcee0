//! The AWS managed policies shipped with the service, as data
//! (server/data/aws-managed-policies.json holds their real documents).

use std::sync::OnceLock;

use serde::Deserialize;

use super::{
    ids::arn,
    policy::{PolicyDocument, PolicyType},
};

/// One AWS managed policy: `arn:aws:iam::aws:policy/NAME`.
#[derive(Clone, Debug, Deserialize)]
pub struct AwsManagedPolicy {
    pub policy_name: String,
    pub policy_id: String,
    pub path: String,
    pub default_version_id: String,
    pub description: String,
    pub create_date: String,
    pub update_date: String,
    pub document: String,
    #[serde(skip)]
    pub arn: String,
}

const DATA: &str = include_str!("../../data/aws-managed-policies.json");

/// Every AWS managed policy rolecall knows, sorted by name.
pub fn all() -> &'static [AwsManagedPolicy] {
    static POLICIES: OnceLock<Vec<AwsManagedPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        // The data file is part of the binary and checked by a unit test: a parse failure
        // here is a build defect, not an input error.
        #[allow(clippy::expect_used)]
        let mut list: Vec<AwsManagedPolicy> =
            serde_json::from_str(DATA).expect("aws-managed-policies.json is valid");
        for p in &mut list {
            p.arn = arn::aws_managed_policy(&p.path, &p.policy_name);
        }
        list.sort_by(|a, b| a.policy_name.cmp(&b.policy_name));
        list
    })
}

/// The AWS managed policy with this ARN.
pub fn by_arn(policy_arn: &str) -> Option<&'static AwsManagedPolicy> {
    all().iter().find(|p| p.arn == policy_arn)
}

/// Checks that every shipped document is a valid identity policy.
pub fn validate_all() -> Result<(), String> {
    for p in all() {
        PolicyDocument::parse(&p.document, PolicyType::Identity)
            .map_err(|e| format!("{}: {e}", p.policy_name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_are_valid_and_complete() {
        validate_all().unwrap();
        for name in [
            "AmazonS3ReadOnlyAccess",
            "IAMReadOnlyAccess",
            "AmazonDynamoDBFullAccess",
            "AmazonEC2ReadOnlyAccess",
            "AdministratorAccess",
            "CloudWatchAgentServerPolicy",
            "AmazonSSMManagedInstanceCore",
        ] {
            let arn = format!("arn:aws:iam::aws:policy/{name}");
            let p = by_arn(&arn).unwrap_or_else(|| panic!("{name} missing"));
            assert!(p.policy_id.starts_with("ANPA"));
        }
        let s3 = by_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess").unwrap();
        let doc = PolicyDocument::parse(&s3.document, PolicyType::Identity).unwrap();
        assert!(doc.statements[0].action.matches_action("s3:ListAllMyBuckets"));
        assert!(!doc.statements[0].action.matches_action("s3:PutObject"));
    }
}
