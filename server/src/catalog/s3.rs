//! S3 buckets: names, owners and regions, so that bucket listings and their policies have
//! something to act on. rolecall stores no objects.

use super::{Catalog, decode, encode, keys, retrying, store_error};
use crate::{
    domain::{Error, ErrorCode, Result, model::Bucket, validate},
    store::Txn,
};

/// What CreateBucket did.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    New(Bucket),
    /// us-east-1's legacy answer to creating a bucket one already owns: 200 OK.
    AlreadyOwned(Bucket),
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
            let bucket = Bucket { name: name.to_string(), region: region.clone(), creation_date: self.now() };
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

    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        retrying(|| async {
            let key = keys::bucket(name);
            let (_, revision) = self.load::<Bucket>(&key).await?.ok_or_else(no_such_bucket)?;
            self.commit(Txn::new().require_revision(&key, revision).delete(&key)).await.map(drop)
        })
        .await
    }
}
