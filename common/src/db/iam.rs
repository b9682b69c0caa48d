//! IAM-generated database credentials: RDS authentication tokens for
//! `postgres-aurora`, `postgres-rds`, `mysql-aurora` and `mysql-rds`
//! connections without a password. A token is a SigV4-presigned
//! `connect` request for the user, signed locally with the worker's AWS
//! credentials (no network call), valid 15 minutes, made afresh for every
//! connection; the server must be reached over TLS.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// How long a token is valid.
const TOKEN_LIFE: Duration = Duration::from_secs(900);

/// The RDS authentication token for `user` at `host:port` in `region`.
pub fn rds_auth_token(
    credentials: Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    now: SystemTime,
) -> Result<String, String> {
    let identity = Identity::from(credentials);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFE);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let encoded_user: String = form_encode(user);
    let url = format!("https://{host}:{port}/?Action=connect&DBUser={encoded_user}");
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut token = format!("{host}:{port}/?Action=connect&DBUser={encoded_user}");
    // The signature last, as botocore writes tokens.
    let mut params: Vec<_> = instructions.params().to_vec();
    params.sort_by_key(|(name, _)| *name == "X-Amz-Signature");
    for (name, value) in &params {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.push_str(&form_encode(value));
    }
    Ok(token)
}

/// RFC 3986 percent-encoding of a query value (unreserved characters kept).
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens made by the original's library (botocore
    /// `generate_db_auth_token`) for the same inputs and time.
    #[test]
    fn tokens_match_botocore() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_557_600);
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let creds = Credentials::new("AKIDEXAMPLE", secret, None, None, "test");
        assert_eq!(
            rds_auth_token(creds, "us-east-1", "db.example.com", 5432, "lava_user", now),
            Ok("db.example.com:5432/?Action=connect&DBUser=lava_user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240501%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240501T100000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=28f634ebea89fa71aed1a58ddbadbc35d3db22c6ce2da8065c08fa5b1ae70f5b".to_string())
        );
        let creds = Credentials::new("AKIDEXAMPLE", secret, Some("tok/en+=".into()), None, "test");
        assert_eq!(
            rds_auth_token(creds, "ap-southeast-2", "db.example.com", 3306, "a user", now),
            Ok("db.example.com:3306/?Action=connect&DBUser=a%20user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240501%2Fap-southeast-2%2Frds-db%2Faws4_request&X-Amz-Date=20240501T100000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=7269431c927303f0f5c62544d799fddd7faa98743d45e8edba0458917c02b108".to_string())
        );
    }
}
