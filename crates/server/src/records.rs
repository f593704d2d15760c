//! What the server keeps in the store: the key layout and the typed records behind each key.
//!
//! Keys are `/`-separated paths, partitioned by region for ECS resources:
//!
//! | key | record |
//! |---|---|
//! | `/iam/access-keys/{akid}` | [`AccessKey`] |
//! | `/iam/join-tokens/{id}` | [`JoinToken`] |
//! | `/ecs/{region}/clusters/{name}` | `Cluster` |
//! | `/ecs/{region}/instances/{cluster}/{id}` | `ContainerInstance` |
//! | `/ecs/{region}/heartbeats/{cluster}/{id}` | [`Heartbeat`] |
//! | `/ecs/{region}/families/{family}` | [`Family`] (the revision counter) |
//! | `/ecs/{region}/task-definitions/{family}/{revision:010}` | [`StoredTaskDefinition`] |
//! | `/ecs/{region}/tasks/{cluster}/{id}` | `Task` |
//! | `/ecs/{region}/services/{cluster}/{name}` | `Service` |
//! | `/ecs/{region}/client-tokens/{cluster}/{token}` | [`ClientToken`] |
//! | `/ecs/{region}/account-settings/{principal}/{name}` | `Setting` |
//! | `/ecr/{region}/repositories/{repo}` | [`RepositoryRecord`] |
//! | `/ecr/{region}/images/{repo}/{digest}` | [`ImageRecord`] (a manifest) |
//! | `/ecr/{region}/image-tags/{repo}/{tag}` | [`ImageTag`] |
//! | `/ecr/{region}/blob-links/{repo}/{digest}` | [`BlobLink`] (a blob the repository holds) |
//! | `/ecr/{region}/uploads/{id}` | [`UploadSession`] |
//! | `/ecr/{region}/lifecycle-policies/{repo}` | [`LifecyclePolicyRecord`] |
//! | `/ecr/{region}/lifecycle-previews/{repo}` | [`LifecyclePreviewRecord`] |
//! | `/elbv2/{region}/load-balancers/{name}` | `LoadBalancer` |
//! | `/elbv2/{region}/target-groups/{name}` | `TargetGroup` |
//! | `/elbv2/{region}/listeners/{lb-id}/{id}` | `Listener` |
//! | `/elbv2/{region}/rules/{listener-id}/{id}` | `Rule` (not the default rules: their listener holds them) |
//! | `/elbv2/{region}/targets/{tg-id}/{target-id}:{port}` | `RegisteredTarget` (with its health) |
//! | `/acm/{region}/certificates/{id}` | [`CertificateRecord`] (the PEMs, private key included) |
//! | `/secretsmanager/{region}/secrets/{name}` | [`SecretRecord`] (values sealed, see `crate::seal`) |
//! | `/ssm/{region}/parameters/{name}` | [`ParameterRecord`] (its versions; SecureStrings sealed) |
//! | `/berth/leader` | the elected leader's id, under its etcd lease (not a record; see `crate::leader`) |
//!
//! Values are the records' JSON. Cluster names, family names and ids never contain `/`
//! (validation guarantees it), so a prefix names exactly one collection. Repository names may
//! contain `/`; in keys it is written `+` (which names never contain), so `{repo}` is one segment.
//! Secret names may contain both `/` and `+`; in keys `/` is written `%2F` (`%` is not allowed in
//! them). Parameter names are written the same way, so the parameters under a path `/a/b` are
//! exactly the keys that begin with the key of `/a/b/`.

pub use crate::acm::CertificateRecord;
pub use crate::registry::meta::{
    BlobLink, ImageRecord, ImageTag, LifecyclePolicyRecord, LifecyclePreviewRecord,
    RepositoryRecord, UploadSession,
};
pub use crate::secretsmanager::SecretRecord;
pub use crate::ssm::ParameterRecord;
use berth_model::Timestamp;
use berth_model::cluster::Cluster;
use berth_model::common::Setting;
use berth_model::common::Tag;
use berth_model::container_instance::ContainerInstance;
use berth_model::elbv2::{
    Listener, LoadBalancer, RegisteredTarget, Rule as ListenerRule, TargetGroup,
};
use berth_model::service::Service;
use berth_model::task::Task;
use berth_model::task_definition::TaskDefinition;
use serde::{Deserialize, Serialize};

/// An access key pair that may sign requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The principal the key acts as, e.g. `arn:aws:iam::ACCOUNT:root`.
    pub principal_arn: String,
    pub created_at: Timestamp,
}

/// A token a new host's agent trades for an access key of its own (see `crate::join_tokens`);
/// only a hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinToken {
    pub id: String,
    /// SHA-256 of the token's secret part, hex.
    pub secret_sha256: String,
    /// The only cluster agents joining with it may register in, if it names one.
    pub cluster: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// When an instance's agent was last heard from (DiscoverPollEndpoint). Only instances whose
/// agent has called in at least once have one: their connection is watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub last_seen: Timestamp,
}

/// The revision counter of a task definition family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Family {
    pub latest_revision: i32,
}

/// A task definition revision with the tags given at registration (the ECS record has no
/// `tags` member; DescribeTaskDefinition returns them beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTaskDefinition {
    pub definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A remembered idempotency token: what the first call asked for and what it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientToken {
    /// A digest of the request's parameters, to tell a retry from a conflicting reuse.
    pub fingerprint: String,
    /// The ARNs the first call created, in order.
    pub arns: Vec<String>,
    pub created_at: Timestamp,
}

macro_rules! records {
    ($($variant:ident($ty:ty) at $collection:literal),* $(,)?) => {
        /// Every kind of record the server stores.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Record {
            $($variant($ty),)*
        }

        impl Record {
            /// Decodes a stored value by the collection its key names; `None` for keys
            /// that are not records (or that fail to decode, which is logged).
            pub fn decode(key: &str, value: &[u8]) -> Option<Record> {
                let collection = collection_of(key)?;
                let record = match collection {
                    $($collection => serde_json::from_slice::<$ty>(value).map(Record::$variant),)*
                    _ => return None,
                };
                record.map_err(|e| tracing::error!(key, error = %e, "stored record does not decode")).ok()
            }

            pub fn encode(&self) -> Vec<u8> {
                match self {
                    $(Record::$variant(r) => serde_json::to_vec(r),)*
                }
                .expect("records always encode")
            }
        }

        $(
            impl Kind for $ty {
                fn wrap(self) -> Record {
                    Record::$variant(self)
                }
                fn peel(record: &Record) -> Option<&Self> {
                    match record {
                        Record::$variant(r) => Some(r),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*
    };
}

records! {
    AccessKey(AccessKey) at "access-keys",
    JoinToken(JoinToken) at "join-tokens",
    Cluster(Cluster) at "clusters",
    Instance(ContainerInstance) at "instances",
    Family(Family) at "families",
    TaskDefinition(StoredTaskDefinition) at "task-definitions",
    Task(Task) at "tasks",
    Service(Service) at "services",
    ClientToken(ClientToken) at "client-tokens",
    Setting(Setting) at "account-settings",
    Heartbeat(Heartbeat) at "heartbeats",
    Repository(RepositoryRecord) at "repositories",
    Image(ImageRecord) at "images",
    ImageTag(ImageTag) at "image-tags",
    BlobLink(BlobLink) at "blob-links",
    Upload(UploadSession) at "uploads",
    LifecyclePolicy(LifecyclePolicyRecord) at "lifecycle-policies",
    LifecyclePreview(LifecyclePreviewRecord) at "lifecycle-previews",
    LoadBalancer(LoadBalancer) at "load-balancers",
    TargetGroup(TargetGroup) at "target-groups",
    Listener(Listener) at "listeners",
    ListenerRule(ListenerRule) at "rules",
    Target(RegisteredTarget) at "targets",
    Certificate(CertificateRecord) at "certificates",
    Secret(SecretRecord) at "secrets",
    Parameter(ParameterRecord) at "parameters",
}

/// A type that is stored as one kind of [`Record`].
pub trait Kind: Sized + Clone {
    fn wrap(self) -> Record;
    fn peel(record: &Record) -> Option<&Self>;
}

/// The collection segment of a key: `/iam/access-keys/…` → `access-keys`,
/// `/ecs/us-east-1/tasks/…` → `tasks`.
fn collection_of(key: &str) -> Option<&str> {
    let mut parts = key.strip_prefix('/')?.split('/');
    match parts.next()? {
        "iam" => parts.next(),
        "ecs" | "ecr" | "elbv2" | "acm" | "secretsmanager" | "ssm" => {
            parts.next()?;
            parts.next()
        }
        _ => None,
    }
}

/// Builders for every key, so that the layout lives in one place.
pub mod keys {
    pub fn access_key(akid: &str) -> String {
        format!("/iam/access-keys/{akid}")
    }
    pub fn join_token(id: &str) -> String {
        format!("/iam/join-tokens/{id}")
    }
    pub fn clusters(region: &str) -> String {
        format!("/ecs/{region}/clusters/")
    }
    pub fn cluster(region: &str, name: &str) -> String {
        format!("/ecs/{region}/clusters/{name}")
    }
    pub fn instances(region: &str, cluster: &str) -> String {
        format!("/ecs/{region}/instances/{cluster}/")
    }
    /// The container instances of every cluster of a region.
    pub fn all_instances(region: &str) -> String {
        format!("/ecs/{region}/instances/")
    }
    pub fn instance(region: &str, cluster: &str, id: &str) -> String {
        format!("/ecs/{region}/instances/{cluster}/{id}")
    }
    pub fn heartbeat(region: &str, cluster: &str, id: &str) -> String {
        format!("/ecs/{region}/heartbeats/{cluster}/{id}")
    }
    pub fn families(region: &str) -> String {
        format!("/ecs/{region}/families/")
    }
    pub fn family(region: &str, family: &str) -> String {
        format!("/ecs/{region}/families/{family}")
    }
    pub fn task_definitions(region: &str) -> String {
        format!("/ecs/{region}/task-definitions/")
    }
    pub fn task_definitions_of(region: &str, family: &str) -> String {
        format!("/ecs/{region}/task-definitions/{family}/")
    }
    pub fn task_definition(region: &str, family: &str, revision: i32) -> String {
        format!("/ecs/{region}/task-definitions/{family}/{revision:010}")
    }
    pub fn tasks(region: &str, cluster: &str) -> String {
        format!("/ecs/{region}/tasks/{cluster}/")
    }
    pub fn task(region: &str, cluster: &str, id: &str) -> String {
        format!("/ecs/{region}/tasks/{cluster}/{id}")
    }
    pub fn services(region: &str, cluster: &str) -> String {
        format!("/ecs/{region}/services/{cluster}/")
    }
    pub fn service(region: &str, cluster: &str, name: &str) -> String {
        format!("/ecs/{region}/services/{cluster}/{name}")
    }
    pub fn client_token(region: &str, cluster: &str, token: &str) -> String {
        format!("/ecs/{region}/client-tokens/{cluster}/{token}")
    }
    pub fn account_settings(region: &str, principal: &str) -> String {
        format!("/ecs/{region}/account-settings/{principal}/")
    }
    pub fn account_setting(region: &str, principal: &str, name: &str) -> String {
        format!("/ecs/{region}/account-settings/{principal}/{name}")
    }
    /// A repository name as one key segment.
    fn repo(name: &str) -> String {
        name.replace('/', "+")
    }
    pub fn repositories(region: &str) -> String {
        format!("/ecr/{region}/repositories/")
    }
    pub fn repository(region: &str, name: &str) -> String {
        format!("/ecr/{region}/repositories/{}", repo(name))
    }
    pub fn images(region: &str, repository: &str) -> String {
        format!("/ecr/{region}/images/{}/", repo(repository))
    }
    pub fn image(region: &str, repository: &str, digest: &str) -> String {
        format!("/ecr/{region}/images/{}/{digest}", repo(repository))
    }
    pub fn image_tags(region: &str, repository: &str) -> String {
        format!("/ecr/{region}/image-tags/{}/", repo(repository))
    }
    pub fn image_tag(region: &str, repository: &str, tag: &str) -> String {
        format!("/ecr/{region}/image-tags/{}/{tag}", repo(repository))
    }
    pub fn blob_links(region: &str, repository: &str) -> String {
        format!("/ecr/{region}/blob-links/{}/", repo(repository))
    }
    pub fn blob_link(region: &str, repository: &str, digest: &str) -> String {
        format!("/ecr/{region}/blob-links/{}/{digest}", repo(repository))
    }
    pub fn uploads(region: &str) -> String {
        format!("/ecr/{region}/uploads/")
    }
    pub fn upload(region: &str, id: &str) -> String {
        format!("/ecr/{region}/uploads/{id}")
    }
    /// Every ECR record of every region.
    pub fn all_ecr() -> String {
        "/ecr/".to_string()
    }
    pub fn lifecycle_policy(region: &str, repository: &str) -> String {
        format!("/ecr/{region}/lifecycle-policies/{}", repo(repository))
    }
    pub fn lifecycle_preview(region: &str, repository: &str) -> String {
        format!("/ecr/{region}/lifecycle-previews/{}", repo(repository))
    }
    pub fn load_balancers(region: &str) -> String {
        format!("/elbv2/{region}/load-balancers/")
    }
    pub fn load_balancer(region: &str, name: &str) -> String {
        format!("/elbv2/{region}/load-balancers/{name}")
    }
    pub fn target_groups(region: &str) -> String {
        format!("/elbv2/{region}/target-groups/")
    }
    pub fn target_group(region: &str, name: &str) -> String {
        format!("/elbv2/{region}/target-groups/{name}")
    }
    pub fn listeners(region: &str) -> String {
        format!("/elbv2/{region}/listeners/")
    }
    pub fn listeners_of(region: &str, lb_id: &str) -> String {
        format!("/elbv2/{region}/listeners/{lb_id}/")
    }
    pub fn listener(region: &str, lb_id: &str, id: &str) -> String {
        format!("/elbv2/{region}/listeners/{lb_id}/{id}")
    }
    pub fn rules(region: &str) -> String {
        format!("/elbv2/{region}/rules/")
    }
    pub fn rules_of(region: &str, listener_id: &str) -> String {
        format!("/elbv2/{region}/rules/{listener_id}/")
    }
    pub fn rule(region: &str, listener_id: &str, id: &str) -> String {
        format!("/elbv2/{region}/rules/{listener_id}/{id}")
    }
    pub fn targets_of(region: &str, tg_id: &str) -> String {
        format!("/elbv2/{region}/targets/{tg_id}/")
    }
    pub fn target(region: &str, tg_id: &str, id: &str, port: u16) -> String {
        format!("/elbv2/{region}/targets/{tg_id}/{id}:{port}")
    }
    pub fn certificates(region: &str) -> String {
        format!("/acm/{region}/certificates/")
    }
    pub fn certificate(region: &str, id: &str) -> String {
        format!("/acm/{region}/certificates/{id}")
    }
    /// Every secret of every region.
    pub fn all_secrets() -> String {
        "/secretsmanager/".to_string()
    }
    pub fn secrets(region: &str) -> String {
        format!("/secretsmanager/{region}/secrets/")
    }
    pub fn secret(region: &str, name: &str) -> String {
        format!(
            "/secretsmanager/{region}/secrets/{}",
            name.replace('/', "%2F")
        )
    }
    /// Every region's parameters.
    pub fn all_parameters() -> String {
        "/ssm/".to_string()
    }
    pub fn parameters(region: &str) -> String {
        format!("/ssm/{region}/parameters/")
    }
    /// The parameter `name`; given a path ending in `/`, the prefix of the parameters under it.
    pub fn parameter(region: &str, name: &str) -> String {
        format!("/ssm/{region}/parameters/{}", name.replace('/', "%2F"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_read_from_keys() {
        assert_eq!(
            collection_of(&keys::access_key("AKID")),
            Some("access-keys")
        );
        assert_eq!(
            collection_of(&keys::task("us-east-1", "c", "1")),
            Some("tasks")
        );
        assert_eq!(
            collection_of(&keys::image_tag("us-east-1", "team/app", "v1")),
            Some("image-tags")
        );
        assert_eq!(
            keys::image_tag("us-east-1", "team/app", "v1"),
            "/ecr/us-east-1/image-tags/team+app/v1"
        );
        assert_eq!(
            collection_of(&keys::target("us-east-1", "ab", "i-1", 80)),
            Some("targets")
        );
        assert_eq!(
            keys::secret("us-east-1", "prod/db+x"),
            "/secretsmanager/us-east-1/secrets/prod%2Fdb+x"
        );
        assert_eq!(
            collection_of(&keys::secret("us-east-1", "prod/db")),
            Some("secrets")
        );
        assert_eq!(
            keys::parameter("us-east-1", "/app/db"),
            "/ssm/us-east-1/parameters/%2Fapp%2Fdb"
        );
        assert!(keys::parameter("r", "/app/db").starts_with(&keys::parameter("r", "/app/")));
        assert_eq!(
            collection_of(&keys::parameter("us-east-1", "db")),
            Some("parameters")
        );
        assert_eq!(collection_of("/other/x"), None);
        assert_eq!(collection_of("tasks"), None);
    }

    #[test]
    fn records_round_trip_through_their_keys() {
        let family = Record::Family(Family { latest_revision: 3 });
        let decoded = Record::decode(&keys::family("us-east-1", "web"), &family.encode());
        assert_eq!(decoded, Some(family));
    }
}
