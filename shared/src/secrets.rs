//! Secrets: the key ring, and how a process gets its secrets.
//!
//! Embedded mode generates development secrets once into the data directory (and
//! says so loudly); a scaled install must be given every secret, and a missing one
//! stops the start with a message naming its variable.

use std::{fmt, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use crate::secret::Secret;
use crate::{config::Settings, push::VapidKey};

/// One data-encryption key of the key ring.
#[derive(Clone)]
pub struct DataKey {
    pub id: String,
    pub key: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The keys that encrypt private text; the last one encrypts new values.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<DataKey>,
}

impl KeyRing {
    /// Parses `id:base64key[,id:base64key…]`.
    pub fn parse(value: &str) -> Result<Self, SecretsError> {
        let mut keys: Vec<DataKey> = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| SecretsError::Invalid("ATTUNE_DATA_KEYS", "each entry must be `id:base64key`".into()))?;
            let id_ok = !id.is_empty()
                && id.len() <= 16
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(SecretsError::Invalid(
                    "ATTUNE_DATA_KEYS",
                    "a key id is 1–16 characters of letters, digits, `-` and `_`".into(),
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(SecretsError::Invalid("ATTUNE_DATA_KEYS", format!("key id `{id}` appears twice")));
            }
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| SecretsError::Invalid("ATTUNE_DATA_KEYS", format!("key `{id}` is not valid base64")))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| SecretsError::Invalid("ATTUNE_DATA_KEYS", format!("key `{id}` must be 32 bytes")))?;
            keys.push(DataKey { id: id.to_owned(), key });
        }
        if keys.is_empty() {
            return Err(SecretsError::Invalid("ATTUNE_DATA_KEYS", "no key given".into()));
        }
        Ok(Self { keys })
    }

    pub fn current(&self) -> &DataKey {
        // `parse` guarantees at least one key.
        &self.keys[self.keys.len() - 1]
    }

    pub fn get(&self, id: &str) -> Option<&DataKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// The secrets a running process holds, parsed.
#[derive(Clone)]
pub struct Secrets {
    pub jwt_secret: Secret,
    pub data_keys: KeyRing,
    pub vapid_key: VapidKey,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "{0} is not set; a scaled install (PostgreSQL or Redis) needs every secret given explicitly. See `attune-api --help`."
    )]
    Missing(&'static str),
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, String),
    /// APNs or FCM configured in part, or wrongly.
    #[error(transparent)]
    NativePush(#[from] crate::push::NativePushError),
    #[error("could not read or write development secrets in {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

const DEV_SECRETS_FILE: &str = "dev-secrets.json";

#[derive(Serialize, Deserialize)]
struct DevSecrets {
    jwt_secret: String,
    data_keys: String,
    /// Added after the first release of this file: generated when missing.
    #[serde(default)]
    vapid_private_key: Option<String>,
}

impl Secrets {
    /// Reads the secrets from the settings; in embedded mode, fills any missing one
    /// from (or generates it into) `<data dir>/dev-secrets.json`.
    pub fn resolve(settings: &Settings) -> Result<Self, SecretsError> {
        let dev = if settings.is_embedded()
            && (settings.jwt_secret.is_none() || settings.data_keys.is_none() || settings.vapid_private_key.is_none())
        {
            Some(load_or_generate_dev_secrets(&settings.data_dir)?)
        } else {
            None
        };
        let jwt_secret = match (&settings.jwt_secret, &dev) {
            (Some(s), _) => s.clone(),
            (None, Some(dev)) => Secret::new(dev.jwt_secret.clone()),
            (None, None) => return Err(SecretsError::Missing("ATTUNE_JWT_SECRET")),
        };
        if jwt_secret.expose().len() < 32 {
            return Err(SecretsError::Invalid("ATTUNE_JWT_SECRET", "must be at least 32 characters".into()));
        }
        let data_keys = match (&settings.data_keys, &dev) {
            (Some(s), _) => KeyRing::parse(s.expose())?,
            (None, Some(dev)) => KeyRing::parse(&dev.data_keys)?,
            (None, None) => return Err(SecretsError::Missing("ATTUNE_DATA_KEYS")),
        };
        let vapid_text = match (&settings.vapid_private_key, &dev) {
            (Some(s), _) => s.expose().to_owned(),
            (None, Some(DevSecrets { vapid_private_key: Some(key), .. })) => key.clone(),
            _ => return Err(SecretsError::Missing("ATTUNE_VAPID_PRIVATE_KEY")),
        };
        let vapid_key = VapidKey::from_base64url(&vapid_text)
            .map_err(|e| SecretsError::Invalid("ATTUNE_VAPID_PRIVATE_KEY", e.to_string()))?;
        // The native push services' credentials are secrets too: a partial or
        // broken configuration stops every process at start, the API (which
        // accepts devices) as well as the worker (which sends).
        crate::push::NativePushConfig::from_settings(settings)?;
        Ok(Self { jwt_secret, data_keys, vapid_key })
    }
}

fn load_or_generate_dev_secrets(dir: &Path) -> Result<DevSecrets, SecretsError> {
    let path = dir.join(DEV_SECRETS_FILE);
    let io = |source| SecretsError::Io { path: path.display().to_string(), source };
    let existing: Option<DevSecrets> = if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        Some(
            serde_json::from_str(&text)
                .map_err(|e| SecretsError::Invalid("development secrets file", format!("{}: {e}", path.display())))?,
        )
    } else {
        None
    };
    let existing = match existing {
        Some(complete) if complete.vapid_private_key.is_some() => return Ok(complete),
        other => other,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let vapid = VapidKey::generate().map_err(|e| SecretsError::Invalid("VAPID key generation", e.to_string()))?;
    let secrets = match existing {
        // An older file: keep its secrets (data is encrypted under them) and add the VAPID key.
        Some(old) => DevSecrets { vapid_private_key: Some(vapid.private_key.expose().to_owned()), ..old },
        None => DevSecrets {
            jwt_secret: random_base64(48),
            data_keys: format!("dev1:{}", random_base64(32)),
            vapid_private_key: Some(vapid.private_key.expose().to_owned()),
        },
    };
    let text = serde_json::to_string_pretty(&secrets)
        .map_err(|e| SecretsError::Invalid("development secrets", e.to_string()))?;
    replace_private_file(&path, text.as_bytes()).map_err(io)?;
    tracing::warn!(
        path = %path.display(),
        "generated DEVELOPMENT secrets; fine for trying Attune on one machine, never for real \
         people's data: set ATTUNE_JWT_SECRET, ATTUNE_DATA_KEYS and ATTUNE_VAPID_PRIVATE_KEY for production"
    );
    Ok(secrets)
}

/// `n` random bytes, base64 (standard alphabet, padded).
pub fn random_base64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// Writes `contents` to `path` so that the old file stays whole until the new one
/// is: a temporary file beside it, flushed to disk, then renamed over it (atomic on
/// one file system). Removing the old file first would lose the embedded data key,
/// and with it every encrypted note, if the process stopped in between.
fn replace_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temporary = std::path::PathBuf::from(temporary);
    let written = write_private_file(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    if let Some(dir) = path.parent() {
        // The rename itself reaches the disk only with the directory's entry.
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ring_uses_the_last_key_for_new_values() {
        let a = STANDARD.encode([1u8; 32]);
        let b = STANDARD.encode([2u8; 32]);
        let ring = KeyRing::parse(&format!("old:{a}, new:{b}")).unwrap();
        assert_eq!(ring.current().id, "new");
        assert_eq!(ring.get("old").unwrap().key, [1u8; 32]);
        assert!(ring.get("other").is_none());
    }

    #[test]
    fn key_ring_rejects_bad_entries() {
        let good = STANDARD.encode([1u8; 32]);
        for bad in [
            String::new(),
            "nocolon".to_owned(),
            format!(":{good}"),
            "k:not base64!".to_owned(),
            format!("k:{}", STANDARD.encode([1u8; 16])),
            format!("k:{good},k:{good}"),
        ] {
            assert!(KeyRing::parse(&bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn settings(args: &[&str]) -> Settings {
        let mut settings = Settings::from_args(args).unwrap();
        // Whatever the environment says, these tests decide the secrets.
        settings.jwt_secret = None;
        settings.data_keys = None;
        settings
    }

    #[test]
    fn a_scaled_install_without_secrets_names_the_missing_variable() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let mut scaled = settings(&["--data-dir", data_dir]);
        scaled.database_url = Some(Secret::new("postgres://db/attune"));
        scaled.redis_url = Some(Secret::new("redis://redis:6379"));
        let error = Secrets::resolve(&scaled).unwrap_err().to_string();
        assert!(error.contains("ATTUNE_JWT_SECRET"), "{error}");

        scaled.jwt_secret = Some(Secret::new("x".repeat(40)));
        let error = Secrets::resolve(&scaled).unwrap_err().to_string();
        assert!(error.contains("ATTUNE_DATA_KEYS"), "{error}");

        scaled.jwt_secret = Some(Secret::new("too short"));
        let error = Secrets::resolve(&scaled).unwrap_err().to_string();
        assert!(error.contains("ATTUNE_JWT_SECRET") && error.contains("32"), "{error}");
        assert!(!dir.path().join(DEV_SECRETS_FILE).exists(), "nothing generated when scaled");
    }

    #[test]
    fn embedded_mode_generates_development_secrets_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut embedded = settings(&["--data-dir", dir.path().to_str().unwrap()]);
        embedded.database_url = None;
        embedded.redis_url = None;
        let first = Secrets::resolve(&embedded).unwrap();
        let second = Secrets::resolve(&embedded).unwrap();
        assert_eq!(first.jwt_secret, second.jwt_secret, "generated once, then reused");
        assert_eq!(first.data_keys.current().key, second.data_keys.current().key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEV_SECRETS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read them");
        }
    }

    #[test]
    fn an_upgrade_of_the_development_secrets_keeps_the_data_key_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A file from before VAPID keys existed: its data key encrypts stored notes.
        let old = r#"{"jwt_secret": "an-old-development-jwt-secret-0123456789", "data_keys": "dev1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#;
        std::fs::write(dir.path().join(DEV_SECRETS_FILE), old).unwrap();
        let mut embedded = settings(&["--data-dir", dir.path().to_str().unwrap()]);
        embedded.database_url = None;
        embedded.redis_url = None;
        let upgraded = Secrets::resolve(&embedded).unwrap();
        assert_eq!(upgraded.data_keys.current().id, "dev1");
        assert_eq!(
            upgraded.data_keys.current().key,
            KeyRing::parse("dev1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap().current().key
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![DEV_SECRETS_FILE.to_owned()], "the new file replaced the old one in place");
        let again = Secrets::resolve(&embedded).unwrap();
        assert_eq!(again.data_keys.current().key, upgraded.data_keys.current().key);
    }

    #[test]
    fn debug_never_prints_secret_values() {
        let secret = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        let ring = KeyRing::parse(&format!("k1:{}", STANDARD.encode([7u8; 32]))).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains("k1") && !shown.contains("BwcH"), "{shown}");
    }
}
