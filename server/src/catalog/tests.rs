//! The catalog's rules under concurrency and store failure.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use super::*;
use crate::{
    domain::clock::FixedClock,
    store::{MemoryStore, Versioned},
};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const DOC: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

fn settings() -> Settings {
    Settings {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        limits: Limits::default(),
        default_http_tokens_required: false,
        default_hop_limit: 1,
        private_network: super::PrivateNetwork::default(),
    }
}

fn catalog_on(store: Arc<dyn Store>) -> Arc<Catalog> {
    Arc::new(Catalog::new(store, Arc::new(FixedClock::at(1_700_000_000)), settings()))
}

fn new_role(name: &str) -> NewRole {
    NewRole { role_name: name.into(), assume_role_policy_document: TRUST.into(), ..NewRole::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_attachments_never_pass_the_quota() {
    let catalog = catalog_on(Arc::new(MemoryStore::default()));
    catalog.create_role(new_role("App")).await.unwrap();
    let mut arns = Vec::new();
    for n in 0..20 {
        arns.push(catalog.create_policy(&format!("P{n}"), "", DOC, "", &[]).await.unwrap().arn);
    }
    let tasks: Vec<_> = arns
        .iter()
        .map(|arn| {
            let (catalog, arn) = (catalog.clone(), arn.clone());
            tokio::spawn(
                async move { catalog.attach_policy::<crate::domain::model::Role>("App", &arn).await },
            )
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.code, ErrorCode::LimitExceeded, "{e:?}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(catalog.get_role("App").await.unwrap().attached_policies.len(), 10);
    let mut counted = 0;
    for arn in &arns {
        counted += catalog.get_policy(arn).await.unwrap().record.attachment_count;
    }
    assert_eq!(counted, 10, "every attachment counted once, none of the refused ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_name_make_one_role() {
    let catalog = catalog_on(Arc::new(MemoryStore::default()));
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let catalog = catalog.clone();
            // Names differ only in case: IAM names are unique case-insensitively.
            let name = if n % 2 == 0 { "Shared" } else { "SHARED" };
            tokio::spawn(async move { catalog.create_role(new_role(name)).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert_eq!(e.code, ErrorCode::EntityAlreadyExists),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(catalog.list_roles("", "", None).await.unwrap().items.len(), 1);
}

/// A store whose commits fail while `broken` is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    broken: AtomicBool,
}

#[async_trait::async_trait]
impl Store for FlakyStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner.get(key).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk on fire".into()));
        }
        self.inner.commit(txn).await
    }
}

#[tokio::test]
async fn a_failing_store_is_a_service_failure_and_loses_nothing() {
    let store = Arc::new(FlakyStore::default());
    let catalog = catalog_on(store.clone());
    catalog.create_role(new_role("Keep")).await.unwrap();
    store.broken.store(true, Ordering::SeqCst);
    let err = catalog.create_role(new_role("Lost")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServiceFailure);
    assert!(!err.message.contains("disk on fire"), "store internals stay in the logs: {}", err.message);
    let err = catalog
        .attach_policy::<crate::domain::model::Role>("Keep", "arn:aws:iam::aws:policy/AdministratorAccess")
        .await;
    assert_eq!(err.unwrap_err().code, ErrorCode::ServiceFailure);
    store.broken.store(false, Ordering::SeqCst);
    let role = catalog.get_role("Keep").await.unwrap();
    assert!(role.attached_policies.is_empty());
    assert!(catalog.get_role("Lost").await.is_err());
}

#[tokio::test]
async fn instance_addresses_stay_unique_across_launches() {
    let catalog = catalog_on(Arc::new(MemoryStore::default()));
    let launch = |n| Launch { image_id: "ami-1".into(), min_count: n, max_count: n, ..Launch::default() };
    let (_, first) = catalog.run_instances(launch(3)).await.unwrap();
    let (_, second) = catalog.run_instances(launch(2)).await.unwrap();
    let mut addresses: Vec<String> =
        first.iter().chain(second.iter()).map(|(i, _)| i.private_ip_address.clone()).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 5);
    assert_eq!(first[0].0.instance_type, "m1.small", "EC2's default instance type");
}

/// A store that takes at most `max` writes per commit, as etcd takes 128 operations.
struct Limited {
    inner: MemoryStore,
    max: usize,
}

#[async_trait::async_trait]
impl Store for Limited {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, crate::store::StoreError> {
        self.inner.get(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, crate::store::StoreError> {
        self.inner.list(prefix, after, limit).await
    }
    async fn commit(&self, txn: Txn) -> Result<u64, crate::store::StoreError> {
        assert!(txn.writes.len() <= self.max, "{} writes in one commit", txn.writes.len());
        self.inner.commit(txn).await
    }
    fn max_writes_per_commit(&self) -> usize {
        self.max
    }
}

#[tokio::test]
async fn launches_larger_than_a_commit_are_written_in_chunks() {
    let catalog = catalog_on(Arc::new(Limited { inner: MemoryStore::default(), max: 10 }));
    let launch = Launch { image_id: "ami-1".into(), min_count: 7, max_count: 7, ..Launch::default() };
    let (reservation, launched) = catalog.run_instances(launch).await.unwrap();
    assert_eq!(launched.len(), 7);
    let mut addresses: Vec<&str> = launched.iter().map(|(i, _)| i.private_ip_address.as_str()).collect();
    addresses.dedup();
    assert_eq!(addresses.len(), 7);
    for (instance, _) in &launched {
        assert_eq!(instance.reservation_id, reservation);
        assert!(catalog.find_instance(&instance.instance_id).await.unwrap().is_some());
        let at = catalog.instance_at(&instance.private_ip_address).await.unwrap();
        assert_eq!(at.as_deref(), Some(instance.instance_id.as_str()));
    }
    // The next launch goes on from the reserved addresses.
    let one = Launch { image_id: "ami-1".into(), ..Launch::default() };
    let (_, next) = catalog.run_instances(one).await.unwrap();
    assert_eq!(next[0].0.private_ip_address, "10.0.0.11");
}
