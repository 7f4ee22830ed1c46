//! AWS configuration from the normal chain (`aws-config`): profile, region, endpoint, credentials.
//! Credentials are checked before anything runs, and never printed.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::sync::Arc;

use aws_sdk_dynamodb::config::ProvideCredentials;
use dynamigrate::aws::{migration_client, s3_client, RetryOptions, RetryStats};

use crate::config::Stage;

/// Region used against a custom endpoint (DynamoDB Local) when none is configured.
const LOCAL_DEFAULT_REGION: &str = "us-east-1";

/// Loads the AWS configuration for the stage and builds dynamigrate's DynamoDB client from it, and
/// the S3 client exports read with.
pub async fn client(stage: &Stage) -> Result<(aws_sdk_dynamodb::Client, Arc<RetryStats>, aws_sdk_s3::Client), String> {
    let sdk = load(stage).await?;
    let (client, stats) = migration_client(&sdk, &RetryOptions::default());
    Ok((client, stats, s3_client(&sdk)))
}

async fn load(stage: &Stage) -> Result<SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &stage.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &stage.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &stage.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let mut config = loader.load().await;
    if config.region().is_none() {
        if stage.endpoint_url.is_none() {
            return Err(format!(
                "no AWS region for stage {:?}: pass --region, set `region` in the stage, or set AWS_REGION",
                stage.name
            ));
        }
        config = config.into_builder().region(Region::new(LOCAL_DEFAULT_REGION)).build();
    }
    check_credentials(&config, stage).await?;
    Ok(config)
}

/// Fails fast, with advice, when the chain finds no credentials, or credentials no request could be
/// signed with; the credentials are then dropped, after the log redactor has learned them.
async fn check_credentials(config: &SdkConfig, stage: &Stage) -> Result<(), String> {
    let advice = match &stage.profile {
        Some(profile) => {
            format!("check that profile {profile:?} exists and is logged in (aws sso login --profile {profile})")
        }
        None => "set AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string(),
    };
    let provider = config.credentials_provider().ok_or_else(|| format!("no AWS credentials provider; {advice}"))?;
    match tokio::time::timeout(Duration::from_secs(30), provider.provide_credentials()).await {
        Ok(Ok(credentials)) => {
            let parts =
                [Some(credentials.access_key_id()), Some(credentials.secret_access_key()), credentials.session_token()];
            for part in parts.into_iter().flatten() {
                crate::logging::redact(part);
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "the AWS credentials found hold a space, a line break or another character no credential has \
                         (not shown here); {advice}"
                    ));
                }
            }
            Ok(())
        }
        Ok(Err(error)) => {
            Err(format!("no usable AWS credentials: {}; {advice}", aws_sdk_dynamodb::error::DisplayErrorContext(error)))
        }
        Err(_) => Err(format!("timed out looking for AWS credentials; {advice}")),
    }
}
