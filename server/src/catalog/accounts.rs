//! Several accounts over one store: a catalog per account, each under its own key prefix
//! (the default account's keys are unprefixed), so that each account has its own roles,
//! users, policies and instances.

use std::{collections::BTreeMap, sync::Arc};

use super::{Catalog, Settings};
use crate::{
    domain::{
        Result,
        clock::Clock,
        model::{AccessKey, Instance, User},
    },
    store::{PrefixedStore, Store},
};

pub struct Accounts {
    default: String,
    catalogs: BTreeMap<String, Arc<Catalog>>,
}

impl Accounts {
    /// The default account (`settings.account_id`) and `others`, on `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings, others: &[String]) -> Self {
        let default = settings.account_id.clone();
        let mut catalogs = BTreeMap::new();
        catalogs
            .insert(default.clone(), Arc::new(Catalog::new(store.clone(), clock.clone(), settings.clone())));
        for account in others.iter().filter(|a| **a != default) {
            let prefix = format!("acct/{account}/");
            let scoped: Arc<dyn Store> = Arc::new(PrefixedStore::new(store.clone(), prefix.clone()));
            let settings = Settings { account_id: account.clone(), ..settings.clone() };
            let catalog = Catalog::new(scoped, clock.clone(), settings).scoped(store.clone(), prefix);
            catalogs.insert(account.clone(), Arc::new(catalog));
        }
        Self { default, catalogs }
    }

    pub fn default_account(&self) -> &str {
        &self.default
    }

    /// The default account's catalog.
    #[allow(clippy::expect_used)]
    pub fn default_catalog(&self) -> &Arc<Catalog> {
        // Inserted by `new`, never removed.
        self.catalogs.get(&self.default).expect("the default account's catalog")
    }

    pub fn get(&self, account: &str) -> Option<&Arc<Catalog>> {
        self.catalogs.get(account)
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.catalogs.keys()
    }

    /// Another writer (a replica) changed `key` of the shared store: forget what any
    /// account's caches hold of it.
    pub fn invalidate(&self, key: &str) {
        if let Some(rest) = key.strip_prefix("acct/")
            && let Some((account, key)) = rest.split_once('/')
            && let Some(catalog) = self.catalogs.get(account)
        {
            catalog.invalidate(key);
            return;
        }
        self.default_catalog().invalidate(key);
    }

    /// Forget every cached record (the change feed lost history).
    pub fn invalidate_all(&self) {
        for catalog in self.catalogs.values() {
            catalog.invalidate_all();
        }
    }

    /// The account holding an instance, and the instance (the default account first).
    pub async fn find_instance(&self, instance_id: &str) -> Result<Option<(Arc<Catalog>, Arc<Instance>)>> {
        for catalog in self.in_search_order() {
            if let Some(instance) = catalog.find_instance(instance_id).await? {
                return Ok(Some((catalog.clone(), instance)));
            }
        }
        Ok(None)
    }

    /// The running instance with this private address. Each account has its own network:
    /// where two accounts' instances share an address, it names neither (None, and a
    /// warning), since believing either would hand one instance the other's role.
    pub async fn find_instance_at(&self, address: &str) -> Result<Option<String>> {
        let mut found = None;
        for catalog in self.in_search_order() {
            if let Some(id) = catalog.instance_at(address).await? {
                if found.is_some() {
                    tracing::warn!(
                        address,
                        "instances of two accounts share this private address; neither is served"
                    );
                    return Ok(None);
                }
                found = Some(id);
            }
        }
        Ok(found)
    }

    /// The account, user and key of a long-term access key id.
    pub async fn find_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(Arc<Catalog>, Arc<User>, AccessKey)>> {
        for catalog in self.in_search_order() {
            if let Some((user, key)) = catalog.find_access_key(access_key_id).await? {
                return Ok(Some((catalog.clone(), user, key)));
            }
        }
        Ok(None)
    }

    /// The account owning a bucket, and the bucket (bucket names are global).
    pub async fn find_bucket(
        &self,
        name: &str,
    ) -> Result<Option<(Arc<Catalog>, crate::domain::model::Bucket)>> {
        for catalog in self.in_search_order() {
            if let Some(bucket) = catalog.find_bucket(name).await? {
                return Ok(Some((catalog.clone(), bucket)));
            }
        }
        Ok(None)
    }

    fn in_search_order(&self) -> impl Iterator<Item = &Arc<Catalog>> {
        std::iter::once(self.default_catalog())
            .chain(self.catalogs.iter().filter(|(a, _)| **a != self.default).map(|(_, c)| c))
    }
}
