//! The `email`/`ses` and `slack` helpers: scripts that run `lava-email` or
//! `lava-slack` for the connection, in the payload's realm
//! (`$LAVA_REALM`) and backend (`LAVA_BACKEND`, exported to payloads). The
//! commands read the connection (and its secrets) themselves, so the
//! helper holds none.

use super::{Helper, sh_quote};

/// The helper running `command` (`lava-email`, `lava-slack`) for `conn_id`.
pub(super) fn helper(command: &'static str, conn_id: &str) -> Helper {
    let script = format!(
        r#"#!/bin/bash
# lava connection helper: {command} through connection {id}.
exec {command} --conn-id {id} --realm "$LAVA_REALM" "$@"
"#,
        id = sh_quote(conn_id)
    );
    Helper {
        script_name: command,
        script,
        dirs: Vec::new(),
        files: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_connection_quoted() {
        let h = helper("lava-email", "mail's");
        assert_eq!(h.script_name, "lava-email");
        assert!(
            h.script
                .contains(r#"exec lava-email --conn-id 'mail'"'"'s' --realm "$LAVA_REALM" "$@""#),
            "{}",
            h.script
        );
    }
}
