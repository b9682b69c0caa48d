//! Python's `uuid.UUID` as a template object, and `utils.uuid()`, which
//! makes a random one.

use std::fmt;
use std::sync::Arc;

use minijinja::Error;
use minijinja::value::{Object, ObjectRepr, Value};

use super::args::no_args;

/// A UUID: prints canonical, `.hex` without dashes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PyUuid(uuid::Uuid);

impl PyUuid {
    /// Python's `repr()`: `UUID('...')`.
    pub(crate) fn repr(&self) -> String {
        format!("UUID('{}')", self.0.hyphenated())
    }
}

impl Object for PyUuid {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "hex" => Value::from(self.0.simple().to_string()),
            "urn" => Value::from(self.0.urn().to_string()),
            "version" => Value::from(self.0.get_version_num()),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

/// `utils.uuid()`: a random (version 4) UUID.
pub(crate) fn uuid4(args: &[Value]) -> Result<Value, Error> {
    no_args("uuid", args)?;
    Ok(Value::from_object(PyUuid(uuid::Uuid::new_v4())))
}
