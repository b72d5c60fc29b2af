//! Vaults and their keys: `imgbt vault …` and `imgbt key …`, and the test kit's vaults, through
//! the same code.

use crate::auth::{self, KeyKind};
use crate::clock::{self, Clock};
use crate::db::{self, Db, DbError, Stmt};
use crate::ids;
use crate::keys;
use serde::Serialize;

/// A new vault with one key of each kind. The keys are shown here once and stored only hashed.
#[derive(Clone, Serialize)]
pub struct NewVault {
    pub vault_id: String,
    pub public_key: String,
    pub secret_key: String,
}

/// A new key, shown here once and stored only hashed.
#[derive(Clone, Serialize)]
pub struct NewKey {
    pub key_id: String,
    pub vault_id: String,
    pub kind: &'static str,
    pub label: String,
    pub key: String,
}

// Without the keys: a `{:?}` in a log, an error or a failed assertion must never show one.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for NewVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVault")
            .field("vault_id", &self.vault_id)
            .field("public_key", &REDACTED)
            .field("secret_key", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.key_id)
            .field("vault_id", &self.vault_id)
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("key", &REDACTED)
            .finish()
    }
}

/// A key as `imgbt key list` shows it: never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub kind: String,
    pub hint: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The CLI's listing calls the type `kind`, as its flags do; the API's record calls it `type`.
impl From<keys::KeyRecord> for KeyInfo {
    fn from(record: keys::KeyRecord) -> Self {
        KeyInfo {
            id: record.id,
            kind: record.kind,
            hint: record.hint,
            label: record.label,
            created_at: record.created_at,
            revoked_at: record.revoked_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VaultInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

fn insert_key(
    key_id: &str,
    vault_id: &str,
    kind: KeyKind,
    key: &str,
    label: &str,
    now: &str,
) -> Stmt {
    // The CLI works on the store itself: no caller's key to guard the insert with.
    keys::insert(key_id, vault_id, kind, key, label, now, None)
}

/// Creates a vault and a public and a secret key for it, in one batch.
pub async fn create_vault(db: &dyn Db, clock: &Clock, name: &str) -> Result<NewVault, DbError> {
    let ms = clock.now_ms();
    let now = clock::format_ms(ms);
    let vault_id = ids::new_vault_id(ms);
    let public_key = auth::generate_key(KeyKind::Public);
    let secret_key = auth::generate_key(KeyKind::Secret);
    db::run(
        db,
        vec![
            Stmt::new(
                "INSERT INTO vaults (id, name, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                vec![vault_id.as_str().into(), name.into(), now.as_str().into()],
            ),
            insert_key(
                &ids::new_key_id(ms),
                &vault_id,
                KeyKind::Public,
                &public_key,
                "default public key",
                &now,
            ),
            insert_key(
                &ids::new_key_id(ms),
                &vault_id,
                KeyKind::Secret,
                &secret_key,
                "default secret key",
                &now,
            ),
        ],
    )
    .await?;
    Ok(NewVault {
        vault_id,
        public_key,
        secret_key,
    })
}

pub async fn list_vaults(db: &dyn Db) -> Result<Vec<VaultInfo>, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            "SELECT id, name, created_at FROM vaults ORDER BY id",
            vec![],
        )],
    )
    .await?;
    Ok(results[0]
        .rows
        .iter()
        .map(|row| VaultInfo {
            id: row.text("id"),
            name: row.text("name"),
            created_at: row.text("created_at"),
        })
        .collect())
}

/// Creates a key for an existing vault; `None` when there is no such vault.
pub async fn create_key(
    db: &dyn Db,
    clock: &Clock,
    vault_id: &str,
    kind: KeyKind,
    label: &str,
) -> Result<Option<NewKey>, DbError> {
    let ms = clock.now_ms();
    let key_id = ids::new_key_id(ms);
    let key = auth::generate_key(kind);
    let key_hash = auth::hash_key(&key);
    let results = db::run(
        db,
        vec![
            insert_key(&key_id, vault_id, kind, &key, label, &clock::format_ms(ms)),
            // The batch can run twice (D1's answer lost, db/d1.rs): the key is there if either
            // run inserted it, found by its id and hash.
            Stmt::new(
                "SELECT 1 AS created FROM api_keys WHERE id = ?1 AND key_hash = ?2",
                vec![key_id.as_str().into(), key_hash.into()],
            ),
        ],
    )
    .await?;
    Ok((!results[1].rows.is_empty()).then(|| NewKey {
        key_id,
        vault_id: vault_id.to_owned(),
        kind: kind.as_str(),
        label: label.to_owned(),
        key,
    }))
}

pub async fn list_keys(db: &dyn Db, vault_id: &str) -> Result<Vec<KeyInfo>, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            format!(
                "SELECT {} FROM api_keys WHERE vault_id = ?1 ORDER BY id",
                keys::KEY_COLUMNS
            ),
            vec![vault_id.into()],
        )],
    )
    .await?;
    Ok(results[0]
        .rows
        .iter()
        .map(|row| KeyInfo::from(keys::key_record(row)))
        .collect())
}

/// Revokes a key of a vault. `false` when the vault has no such live key.
pub async fn revoke_key(
    db: &dyn Db,
    clock: &Clock,
    vault_id: &str,
    key_id: &str,
) -> Result<bool, DbError> {
    let ms = clock.now_ms();
    let params = vec![
        clock::format_ms(ms).into(),
        key_id.into(),
        vault_id.into(),
        ids::new_revoke_id(ms).into(),
    ];
    let results = db::run(
        db,
        vec![
            Stmt::new(
                "UPDATE api_keys SET revoked_at = ?1, revoked_by = ?4 \
                 WHERE id = ?2 AND vault_id = ?3 AND revoked_at IS NULL",
                params.clone(),
            ),
            // Revoked by this call: by this run of the batch, or by an earlier run whose answer
            // was lost (the D1 client resends it, db/d1.rs).
            Stmt::new(
                "SELECT 1 AS revoked FROM api_keys WHERE id = ?2 AND vault_id = ?3 AND revoked_by = ?4",
                params,
            ),
        ],
    )
    .await?;
    Ok(!results[1].rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_vaults_and_keys_never_show_their_keys_in_debug() {
        let vault = NewVault {
            vault_id: "vault_1".into(),
            public_key: "pk_0123456789abcdef".into(),
            secret_key: "sk_fedcba9876543210".into(),
        };
        let key = NewKey {
            key_id: "key_1".into(),
            vault_id: "vault_1".into(),
            kind: "secret",
            label: "ci".into(),
            key: "sk_0011223344556677".into(),
        };
        let shown = format!("{vault:?} {key:?}");
        for secret in ["0123456789abcdef", "fedcba9876543210", "0011223344556677"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("vault_1") && shown.contains("key_1"),
            "{shown}"
        );
    }
}
