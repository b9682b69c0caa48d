//! The `aws` helper: the connection's credentials (keys, or an assumed
//! role's session, frozen when the helper is made) in `.aws_config` (0600)
//! as profile `lava`, and a script that runs the AWS CLI with that profile.

use std::path::{Path, PathBuf};

use lava_common::connection::AwsCredentials;

use super::{Helper, sh_quote};

/// The config file's name in the helper directory.
const CONFIG: &str = ".aws_config";

/// The helper of an `aws` connection with resolved credentials.
pub(super) fn helper(dir: &Path, creds: &AwsCredentials) -> Helper {
    let mut config = String::from("[profile lava]\ns3 =\n    signature_version = s3v4\n");
    // The original writes a missing region as `None`, which the AWS CLI
    // takes for a region name: leave the line out instead.
    if let Some(region) = &creds.region {
        config.push_str(&format!("region={region}\n"));
    }
    config.push_str(&format!(
        "aws_access_key_id={}\naws_secret_access_key={}\n",
        creds.access_key_id, creds.secret_access_key
    ));
    if let Some(token) = &creds.session_token {
        config.push_str(&format!("aws_session_token={token}\n"));
    }
    // With an explicit profile the AWS CLI ignores credentials in the
    // environment; a `[lava]` profile in a shared credentials file would
    // still win, so none is read.
    let script = format!(
        r#"#!/bin/bash
# lava connection helper (aws): the AWS CLI with the connection's credentials.
export AWS_CONFIG_FILE={config}
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_DEFAULT_PROFILE
exec aws --profile lava "$@"
"#,
        config = sh_quote(&dir.join(CONFIG).display().to_string())
    );
    Helper {
        script_name: "aws",
        script,
        dirs: Vec::new(),
        files: vec![(PathBuf::from(CONFIG), config.into_bytes())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_the_config_file_only() {
        let creds = AwsCredentials {
            region: Some("ap-southeast-2".into()),
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
            session_token: Some("tok".into()),
        };
        let h = helper(Path::new("/j/conn.a"), &creds);
        assert!(!h.script.contains("s3cr3t") && !h.script.contains("AKIAEXAMPLE"));
        assert!(h.script.contains("AWS_CONFIG_FILE='/j/conn.a/.aws_config'"));
        assert!(h.script.ends_with("exec aws --profile lava \"$@\"\n"));
        let config = String::from_utf8_lossy(&h.files[0].1).into_owned();
        assert_eq!(
            config,
            "[profile lava]\ns3 =\n    signature_version = s3v4\nregion=ap-southeast-2\n\
             aws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=s3cr3t\naws_session_token=tok\n"
        );
        let keys_only = helper(
            Path::new("/j"),
            &AwsCredentials {
                region: None,
                session_token: None,
                ..creds
            },
        );
        let config = String::from_utf8_lossy(&keys_only.files[0].1).into_owned();
        assert!(!config.contains("region") && !config.contains("session_token"));
    }
}
