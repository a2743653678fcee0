//! S3 buckets: names, owners and regions, so that bucket listings and their policies have
//! something to act on. rolecall stores no objects.

use super::{Catalog, decode, encode, keys, retrying, store_error};
use crate::{
    domain::{
        Error, ErrorCode, Result,
        model::Bucket,
        policy::{Patterns, PolicyDocument, PolicyType},
        validate,
    },
    store::Txn,
};

/// What CreateBucket did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    New(Bucket),
    /// us-east-1's legacy answer to creating a bucket one already owns: 200 OK.
    AlreadyOwned(Bucket),
}

/// S3's limit on a bucket policy.
const BUCKET_POLICY_MAX: usize = 20 * 1024;

fn validate_bucket_policy(bucket: &str, text: &str) -> Result<()> {
    let malformed = |message: &str| Error::new(ErrorCode::MalformedPolicy, message);
    if text.len() > BUCKET_POLICY_MAX {
        return Err(malformed("Policy exceeds the maximum allowed document size."));
    }
    let doc = PolicyDocument::parse(text, PolicyType::Resource).map_err(|e| malformed(&e.message))?;
    let arn = format!("arn:aws:s3:::{bucket}");
    let ours =
        |resource: &str| resource == arn || resource.strip_prefix(&arn).is_some_and(|r| r.starts_with('/'));
    for statement in &doc.statements {
        if let Some(Patterns::Only(resources)) = &statement.resource
            && !resources.iter().all(|r| ours(r))
        {
            return Err(malformed("Policy has invalid resource"));
        }
    }
    Ok(())
}

fn no_such_bucket() -> Error {
    Error::new(ErrorCode::NoSuchBucket, "The specified bucket does not exist")
}

impl Catalog {
    pub async fn find_bucket(&self, name: &str) -> Result<Option<Bucket>> {
        Ok(self.load::<Bucket>(&keys::bucket(name)).await?.map(|(b, _)| b))
    }

    /// Creates a bucket of this account in `region` (the catalog's own where empty). Names
    /// are global across accounts: the caller checks the other accounts first.
    pub async fn create_bucket(&self, name: &str, region: &str) -> Result<Created> {
        validate::bucket_name(name)?;
        let region = if region.is_empty() { self.settings.region.clone() } else { region.to_string() };
        retrying(|| async {
            if let Some(existing) = self.find_bucket(name).await? {
                if existing.region == "us-east-1" && region == "us-east-1" {
                    return Ok(Created::AlreadyOwned(existing));
                }
                return Err(Error::new(
                    ErrorCode::BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ));
            }
            let bucket = Bucket {
                name: name.to_string(),
                region: region.clone(),
                creation_date: self.now(),
                policy: None,
            };
            let key = keys::bucket(name);
            self.commit(Txn::new().require_absent(&key).put(&key, encode(&bucket)?)).await?;
            Ok(Created::New(bucket))
        })
        .await
    }

    /// Every bucket of this account, by name.
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        let mut buckets = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let batch = self.store.list(keys::BUCKETS, after.as_deref(), 1000).await.map_err(store_error)?;
            let done = batch.len() < 1000;
            for entry in batch {
                buckets.push(decode::<Bucket>(&entry.key, &entry.value)?);
                after = Some(entry.key);
            }
            if done {
                return Ok(buckets);
            }
        }
    }

    /// Sets a bucket's policy (None removes it). A policy is a resource policy (Principal and
    /// Resource in every statement) of at most 20 KB, whose resources are the bucket or
    /// under it; S3 names what is wrong with one MalformedPolicy.
    pub async fn put_bucket_policy(&self, name: &str, policy: Option<&str>) -> Result<()> {
        if let Some(text) = policy {
            validate_bucket_policy(name, text)?;
        }
        retrying(|| async {
            let key = keys::bucket(name);
            let (mut bucket, revision) = self.load::<Bucket>(&key).await?.ok_or_else(no_such_bucket)?;
            bucket.policy = policy.map(str::to_string);
            self.commit(Txn::new().require_revision(&key, revision).put(&key, encode(&bucket)?))
                .await
                .map(drop)
        })
        .await
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        retrying(|| async {
            let key = keys::bucket(name);
            let (_, revision) = self.load::<Bucket>(&key).await?.ok_or_else(no_such_bucket)?;
            self.commit(Txn::new().require_revision(&key, revision).delete(&key)).await.map(drop)
        })
        .await
    }
}
