//! A real S3 server for tests: SeaweedFS, started by `.ci/test.sh`, named by the
//! `REFRACT_TEST_S3_*` variables.

use refract::config::Config;
use refract::storage::origin::Backend;
use refract::util::secret::Secret;

pub fn s3_env() -> (String, String, String, String) {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run the suite with .ci/test.sh, which starts a real S3 server")
        })
    };
    (
        var("REFRACT_TEST_S3_ENDPOINT"),
        var("REFRACT_TEST_S3_BUCKET"),
        var("REFRACT_TEST_S3_KEY"),
        var("REFRACT_TEST_S3_SECRET"),
    )
}

pub fn s3_config(
    c: &mut Config,
    endpoint: &str,
    bucket: &str,
    key: &str,
    secret: &str,
    prefix: &str,
) {
    c.storage.backend = Backend::S3;
    c.storage.endpoint = Some(endpoint.into());
    c.storage.bucket = Some(bucket.into());
    c.storage.access_key_id = Some(key.into());
    c.storage.secret_access_key = Some(Secret(secret.into()));
    c.storage.prefix = Some(prefix.into());
    c.storage.stat_ttl_ms = 1500;
}

/// An OpenDAL client of the test bucket, to look into it independently of the server.
pub fn s3_operator(
    endpoint: &str,
    bucket: &str,
    key: &str,
    secret: &str,
    prefix: &str,
) -> opendal::Operator {
    opendal::install_default();
    opendal::Operator::new(
        opendal::services::S3::default()
            .endpoint(endpoint)
            .bucket(bucket)
            .region("us-east-1")
            .access_key_id(key)
            .secret_access_key(secret)
            .disable_config_load()
            .disable_ec2_metadata()
            .root(prefix),
    )
    .unwrap()
}
