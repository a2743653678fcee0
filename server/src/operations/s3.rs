//! The S3 operations rolecall serves (buckets and their policies; no objects), each
//! authorized as S3 authorizes it, audited, and carried out. A bucket's policy is its
//! resource policy: in the owner's account it can grant on its own, across accounts both it
//! and the caller's policies must allow, and its explicit Deny stops everyone. Bucket names
//! are one namespace across accounts, so these operations work on all of them.

use std::sync::Arc;

use serde::Serialize;

use super::{Gate, Operation};
use crate::{
    authz::{CallContext, access_denied},
    catalog::{Accounts, BucketCreated, Catalog},
    domain::{
        Error, ErrorCode, Result,
        evaluation::PolicyKind,
        model::Bucket,
        policy::{PolicyDocument, PolicyType},
        principal::Principal,
        validate,
    },
};

/// ListBuckets: the caller's account's buckets.
#[derive(Serialize)]
pub struct ListBuckets {}

/// A request on one bucket (its audit parameters are its name, as CloudTrail's).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBucket {
    pub bucket_name: String,
}

/// CreateBucket, in the region its configuration names (the caller's own where it names none).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBucket {
    pub bucket_name: String,
    #[serde(skip)]
    pub location_constraint: String,
}

/// PutBucketPolicy, with the policy as sent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutBucketPolicy {
    pub bucket_name: String,
    #[serde(skip)]
    pub policy: Vec<u8>,
}

operations! {
    ListBuckets, "ListBuckets" false;
    CreateBucket, "CreateBucket" true;
    PutBucketPolicy, "PutBucketPolicy" true;
}

/// The requests that name only a bucket, one type each.
macro_rules! on_bucket {
    ($($ty:ident $action:literal $mutates:literal;)*) => {
        $(
            #[derive(Serialize)]
            #[serde(transparent)]
            pub struct $ty(pub OnBucket);

            impl Operation for $ty {
                const ACTION: &'static str = $action;
                const MUTATES: bool = $mutates;
            }

            impl $ty {
                pub fn new(bucket_name: &str) -> Self {
                    Self(OnBucket { bucket_name: bucket_name.to_string() })
                }
            }
        )*
    };
}

on_bucket! {
    DeleteBucket "DeleteBucket" true;
    HeadBucket "HeadBucket" false;
    ListObjects "ListObjects" false;
    GetBucketPolicy "GetBucketPolicy" false;
    DeleteBucketPolicy "DeleteBucketPolicy" true;
}

/// The S3 operations, on every account's buckets.
pub struct S3 {
    accounts: Arc<Accounts>,
    gate: Gate,
}

fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// S3 serves signed requests only.
fn signer(caller: &CallContext) -> Result<&Principal> {
    caller
        .principal
        .as_ref()
        .ok_or_else(|| Error::new(ErrorCode::MissingAuthenticationToken, "Access Denied"))
}

impl S3 {
    /// The S3 operations over `accounts`; `gate` (`s3.amazonaws.com`) audits them.
    pub fn new(accounts: Arc<Accounts>, gate: Gate) -> Self {
        Self { accounts, gate }
    }

    /// `action` on a resource no bucket policy covers, decided on the caller's policies.
    async fn allowed(&self, caller: &CallContext, action: &str, resource: String) -> Result<()> {
        let principal = signer(caller)?;
        self.gate.authz.authorize(principal, &caller.request(action, resource)).await
    }

    /// The caller's own account's catalog.
    fn own_catalog(&self, caller: &CallContext) -> Result<Arc<Catalog>> {
        super::caller_catalog(&self.accounts, signer(caller)?)
    }

    /// A bucket, its owner's catalog, and `action` on it authorized with the bucket's policy.
    /// A bucket that does not exist is NoSuchBucket to a caller whose own policies allow the
    /// action, and AccessDenied to others, as S3 answers.
    async fn existing(
        &self,
        caller: &CallContext,
        action: &str,
        bucket: &str,
    ) -> Result<(Arc<Catalog>, Bucket)> {
        let principal = signer(caller)?;
        let request = caller.request(action, bucket_arn(bucket));
        let Some((owner, found)) = self.accounts.find_bucket(bucket).await? else {
            self.gate.authz.authorize(principal, &request).await?;
            return Err(Error::new(ErrorCode::NoSuchBucket, "The specified bucket does not exist"));
        };
        let policy = match &found.policy {
            Some(text) => Some(PolicyDocument::parse_stored(text, PolicyType::Resource)?),
            None => None,
        };
        self.gate.authz.check_on(principal, &request, policy.as_ref(), owner.account_id()).await?;
        Ok((owner, found))
    }

    /// A bucket whose policy `action` changes: only the bucket's own account may.
    async fn own_policy(&self, caller: &CallContext, action: &str, bucket: &str) -> Result<Arc<Catalog>> {
        let (owner, _) = self.existing(caller, action, bucket).await?;
        let principal = signer(caller)?;
        if owner.account_id() != principal.account_id {
            let request = caller.request(action, bucket_arn(bucket));
            return Err(access_denied(principal, &request, PolicyKind::Resource));
        }
        Ok(owner)
    }

    pub async fn list_buckets(&self, caller: &CallContext, request: ListBuckets) -> Result<Vec<Bucket>> {
        let admitted = self.allowed(caller, "s3:ListAllMyBuckets", "*".to_string()).await;
        let admitted = admitted.and_then(|()| self.own_catalog(caller));
        self.gate
            .admit(caller, request, admitted, |_, catalog| async move { catalog.list_buckets().await })
            .await
    }

    pub async fn create_bucket(&self, caller: &CallContext, request: CreateBucket) -> Result<Bucket> {
        let admitted = self.allowed(caller, "s3:CreateBucket", bucket_arn(&request.bucket_name)).await;
        let admitted = admitted.and_then(|()| self.own_catalog(caller));
        self.gate.admit(caller, request, admitted, |r, catalog| async move {
            validate::bucket_name(&r.bucket_name)?;
            if let Some((owner, _)) = self.accounts.find_bucket(&r.bucket_name).await?
                && owner.account_id() != catalog.account_id()
            {
                return Err(Error::new(
                    ErrorCode::BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                ));
            }
            match catalog.create_bucket(&r.bucket_name, &r.location_constraint).await? {
                BucketCreated::New(b) | BucketCreated::AlreadyOwned(b) => Ok(b),
            }
        })
        .await
    }

    pub async fn delete_bucket(&self, caller: &CallContext, request: DeleteBucket) -> Result<()> {
        let admitted = self.existing(caller, "s3:DeleteBucket", &request.0.bucket_name).await;
        self.gate
            .admit(caller, request, admitted, |r, (owner, _)| async move {
                owner.delete_bucket(&r.0.bucket_name).await
            })
            .await
    }

    /// HeadBucket: the bucket, for its region.
    pub async fn head_bucket(&self, caller: &CallContext, request: HeadBucket) -> Result<Bucket> {
        let admitted = self.existing(caller, "s3:ListBucket", &request.0.bucket_name).await;
        self.gate.admit(caller, request, admitted, |_, (_, found)| async move { Ok(found) }).await
    }

    /// ListObjects: authorized on the bucket; rolecall stores no objects, so the listing is
    /// empty.
    pub async fn list_objects(&self, caller: &CallContext, request: ListObjects) -> Result<()> {
        let admitted = self.existing(caller, "s3:ListBucket", &request.0.bucket_name).await;
        self.gate.admit(caller, request, admitted, |_, _| async move { Ok(()) }).await
    }

    pub async fn put_bucket_policy(&self, caller: &CallContext, request: PutBucketPolicy) -> Result<()> {
        let admitted = self.own_policy(caller, "s3:PutBucketPolicy", &request.bucket_name).await;
        self.gate
            .admit(caller, request, admitted, |r, owner| async move {
                let text = std::str::from_utf8(&r.policy).map_err(|_| {
                    Error::new(
                        ErrorCode::MalformedPolicy,
                        "Policies must be valid JSON and the first byte must be '{'",
                    )
                })?;
                owner.put_bucket_policy(&r.bucket_name, Some(text)).await
            })
            .await
    }

    /// GetBucketPolicy: the policy as it was put (any account its policy lets read it).
    pub async fn get_bucket_policy(&self, caller: &CallContext, request: GetBucketPolicy) -> Result<String> {
        let admitted = self.existing(caller, "s3:GetBucketPolicy", &request.0.bucket_name).await;
        self.gate
            .admit(caller, request, admitted, |_, (_, found)| async move {
                found.policy.ok_or_else(|| {
                    Error::new(ErrorCode::NoSuchBucketPolicy, "The bucket policy does not exist")
                })
            })
            .await
    }

    pub async fn delete_bucket_policy(
        &self,
        caller: &CallContext,
        request: DeleteBucketPolicy,
    ) -> Result<()> {
        let admitted = self.own_policy(caller, "s3:DeleteBucketPolicy", &request.0.bucket_name).await;
        self.gate
            .admit(caller, request, admitted, |r, owner| async move {
                owner.put_bucket_policy(&r.0.bucket_name, None).await
            })
            .await
    }
}
