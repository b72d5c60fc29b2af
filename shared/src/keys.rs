//! Keys and vault settings as the HTTP routes manage them (docs/API.md#key-management, docs/API.md#vault):
//! the records they return, the bodies they take, and their SQL. Request handlers use this module;
//! `admin::vaults` (the CLI's side) shares its key insert.
//!
//! Every write carries [`write_guard!`](crate::write_guard) and is safe to run twice (the D1
//! client may resend a batch whose answer was lost, db/d1.rs): each write is followed by a probe
//! that finds its own row by id, so a resend reads the first run's effect.

use crate::ApiError;
use crate::auth::{self, KeyKind};
use crate::batch::{self, Query};
use crate::db::{Row, Stmt, StmtResult, Value};
use crate::delivery::Mode;
use crate::validate;
use serde::Serialize;

/// Writes the one log line of a key change (issue: "request id, vault, key id, action"): never
/// the key, which only the create's answer carries.
pub fn log_change(req: &lambda_http::Request, vault_id: &str, key_id: &str, action: &str) {
    use lambda_http::RequestExt;
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.as_str())
        .unwrap_or_default();
    lambda_http::tracing::info!(request_id, vault = vault_id, key_id, action, "key change");
}

/// Longest label of a key and longest name of a vault, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// A key as the keys routes show it: never the key or its hash. (The CLI client reads it back.)
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub hint: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A key just created: its record and, this once, the key itself.
#[derive(Clone, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: KeyRecord,
    pub key: String,
}

/// Without the key: a `{:?}` in a log or an error must never show it.
impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("record", &self.record)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A vault's settings. Kept a struct of named members so that later settings join it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VaultRecord {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// `public` or `signed` (docs/API.md#delivery).
    pub delivery: String,
    /// When the current delivery secret came into force; never the secret itself.
    pub delivery_secret_rotated_at: Option<String>,
}

/// A label or a vault name: 1 to 100 characters, none of them a control character (they would
/// break the one-line listings of the CLI).
pub fn parse_label(field: &str, value: Option<serde_json::Value>) -> Result<String, ApiError> {
    let Some(value) = value else {
        return Err(ApiError::invalid(field, "is required"));
    };
    let serde_json::Value::String(text) = value else {
        return Err(ApiError::invalid(field, "must be a string"));
    };
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_LABEL_CHARS {
        return Err(ApiError::invalid(
            field,
            format_args!("must be 1 to {MAX_LABEL_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text)
}

/// The body of `POST …/keys`.
#[derive(Debug, PartialEq)]
pub struct NewKeyBody {
    pub label: String,
    pub kind: KeyKind,
}

impl NewKeyBody {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut members = validate::json_object(content_type, &[], body, &["label", "type"])?;
        let label = parse_label("label", members.remove("label"))?;
        let kind = match members.remove("type") {
            None => return Err(ApiError::invalid("type", "is required")),
            Some(serde_json::Value::String(text)) => KeyKind::parse(&text),
            Some(_) => None,
        }
        .ok_or_else(|| ApiError::invalid("type", "must be \"public\" or \"secret\""))?;
        Ok(NewKeyBody { label, kind })
    }
}

/// The body of `PATCH /api/v1/vaults/{vaultId}`: the asset PATCH's rules (a JSON object, as
/// `application/json` or `application/merge-patch+json`, unknown members refused, at least one
/// change).
#[derive(Debug, PartialEq)]
pub struct VaultPatch {
    pub name: Option<String>,
    pub delivery: Option<Mode>,
}

impl VaultPatch {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut members = validate::json_object(
            content_type,
            &["application/merge-patch+json"],
            body,
            &["name", "delivery"],
        )?;
        if members.is_empty() {
            return Err(ApiError::invalid("body", "must contain name or delivery"));
        }
        let name = match members.remove("name") {
            None => None,
            some => Some(parse_label("name", some)?),
        };
        let delivery = match members.remove("delivery") {
            None => None,
            Some(serde_json::Value::String(text)) => Some(Mode::parse(&text)),
            Some(_) => Some(None),
        };
        let delivery = delivery
            .map(|mode| {
                mode.ok_or_else(|| {
                    ApiError::invalid("delivery", "must be \"public\" or \"signed\"")
                })
            })
            .transpose()?;
        Ok(VaultPatch { name, delivery })
    }
}

pub(crate) const KEY_COLUMNS: &str = "id, kind, hint, label, created_at, revoked_at";

pub(crate) fn key_record(row: &Row) -> KeyRecord {
    KeyRecord {
        id: row.text("id"),
        kind: row.text("kind"),
        hint: row.text("hint"),
        label: row.text("label"),
        created_at: row.text("created_at"),
        revoked_at: row.text_opt("revoked_at"),
    }
}

fn key_records(result: StmtResult) -> Result<Vec<KeyRecord>, ApiError> {
    Ok(result.rows.iter().map(key_record).collect())
}

fn first_key_record(result: StmtResult) -> Result<Option<KeyRecord>, ApiError> {
    Ok(result.rows.first().map(key_record))
}

/// The keys of `vault_id`, oldest first, read only for a live secret key of the vault (`hash`).
pub fn list(vault_id: &str, hash: Value) -> Query<Vec<KeyRecord>> {
    Query::new(
        Stmt::new(
            format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE vault_id = ?1 AND {} ORDER BY id",
                crate::write_guard!("?2", "?1")
            ),
            vec![vault_id.into(), hash],
        ),
        key_records,
    )
}

/// Inserts a key unless a row with its id is there; `guard_hash` (the caller's key hash) makes
/// it a write only a live secret key of the vault may do, `None` leaves that to the caller (the
/// CLI, which works on the store itself).
pub fn insert(
    key_id: &str,
    vault_id: &str,
    kind: KeyKind,
    key: &str,
    label: &str,
    now: &str,
    guard_hash: Option<Value>,
) -> Stmt {
    let mut params = vec![
        key_id.into(),
        vault_id.into(),
        kind.as_str().into(),
        auth::hash_key(key).into(),
        auth::key_hint(key).into(),
        label.into(),
        now.into(),
    ];
    let guard = match guard_hash {
        Some(hash) => {
            params.push(hash);
            concat!(" AND ", crate::write_guard!("?8", "?2"))
        }
        None => "",
    };
    Stmt::new(
        format!(
            "INSERT INTO api_keys (id, vault_id, kind, key_hash, hint, label, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM vaults WHERE id = ?2)\
             {guard} ON CONFLICT DO NOTHING"
        ),
        params,
    )
}

/// The key `key_id` if it holds `key` (so that a resent batch finds the row its first run
/// inserted, and nothing else).
pub fn created(key_id: &str, key: &str) -> Query<Option<KeyRecord>> {
    Query::new(
        Stmt::new(
            format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND key_hash = ?2"),
            vec![key_id.into(), auth::hash_key(key).into()],
        ),
        first_key_record,
    )
}

// ?1 now, ?2 key id, ?3 vault id, ?4 the caller's key hash, ?5 this revoke's id. A secret key is
// revoked only while another live secret key of the vault remains: the count is in the UPDATE's
// own WHERE, so two concurrent revokes of a vault's last two secret keys cannot both pass it (each
// statement runs under the store's one writer, and a D1 batch is a transaction).
const REVOKE: &str = concat!(
    "UPDATE api_keys SET revoked_at = ?1, revoked_by = ?5 ",
    "WHERE id = ?2 AND vault_id = ?3 AND revoked_at IS NULL AND ",
    crate::write_guard!("?4", "?3"),
    " AND (kind <> 'secret' OR EXISTS (SELECT 1 FROM api_keys AS other ",
    "WHERE other.vault_id = ?3 AND other.kind = 'secret' AND other.revoked_at IS NULL ",
    "AND other.id <> ?2))"
);

// After the UPDATE: the key as it now is. `revoked` says this revoke's id is on it (this run or a
// lost earlier run of the same batch revoked it); `by_itself` that it is the caller's own secret key.
const REVOKED: &str = "SELECT revoked_by IS NOT NULL AND revoked_by = ?5 AS revoked, \
     revoked_at IS NULL AS live, (key_hash = ?4 AND kind = 'secret') AS by_itself \
     FROM api_keys WHERE id = ?2 AND vault_id = ?3";

/// What a revoke found, read from the probe after its UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Revoked by this request (`by_itself`: the key that made it).
    Done { by_itself: bool },
    /// Live, and kept: the vault's last live secret key, or the caller could not write.
    Kept,
    /// No such key in the vault, or revoked before.
    NotFound,
}

fn read_revoke(result: StmtResult) -> Result<Revoke, ApiError> {
    let Some(row) = result.rows.first() else {
        return Ok(Revoke::NotFound);
    };
    let flag = |column: &str| row.get(column).and_then(|v| v.as_i64()) == Some(1);
    Ok(if flag("revoked") {
        Revoke::Done {
            by_itself: flag("by_itself"),
        }
    } else if flag("live") {
        Revoke::Kept
    } else {
        Revoke::NotFound
    })
}

/// Revokes `key_id` of `vault_id` at `now_ms` for the caller whose key hash is `hash`: the guarded
/// UPDATE, then the probe that says what happened. The revoke's own id (new here) is in both.
pub fn revoke(
    now_ms: u64,
    key_id: &str,
    vault_id: &str,
    hash: Value,
) -> (Query<()>, Query<Revoke>) {
    let params = vec![
        crate::clock::format_ms(now_ms).into(),
        key_id.into(),
        vault_id.into(),
        hash,
        crate::ids::new_revoke_id(now_ms).into(),
    ];
    (
        Query::new(Stmt::new(REVOKE, params.clone()), batch::ignore),
        Query::new(Stmt::new(REVOKED, params), read_revoke),
    )
}

// Never the delivery secrets: a vault's record is an answer.
const VAULT_COLUMNS: &str = "id, name, created_at, delivery, delivery_secret_rotated_at";

fn vault_record(result: StmtResult) -> Result<Option<VaultRecord>, ApiError> {
    Ok(result.rows.first().map(|row| VaultRecord {
        id: row.text("id"),
        name: row.text("name"),
        created_at: row.text("created_at"),
        delivery: row.text("delivery"),
        delivery_secret_rotated_at: row.text_opt("delivery_secret_rotated_at"),
    }))
}

/// The settings of `vault_id`.
pub fn vault(vault_id: &str) -> Query<Option<VaultRecord>> {
    Query::new(
        Stmt::new(
            format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = ?1"),
            vec![vault_id.into()],
        ),
        vault_record,
    )
}

// ?1 vault, ?2 name or NULL, ?3 delivery or NULL, ?4 the caller's key hash, ?5 a fresh delivery
// secret, ?6 now. A vault turned signed without a secret gets ?5 in the same UPDATE, so no request
// ever sees a signed vault that cannot verify; one that has a secret keeps it, which also makes a
// resent batch write what its first run wrote.
const UPDATE: &str = concat!(
    "UPDATE vaults SET name = coalesce(?2, name), delivery = coalesce(?3, delivery), ",
    "delivery_secret_rotated_at = CASE WHEN coalesce(?3, delivery) = 'signed' ",
    "AND delivery_secret IS NULL THEN ?6 ELSE delivery_secret_rotated_at END, ",
    "delivery_secret = CASE WHEN coalesce(?3, delivery) = 'signed' ",
    "AND delivery_secret IS NULL THEN ?5 ELSE delivery_secret END ",
    "WHERE id = ?1 AND ",
    crate::write_guard!("?4", "?1"),
    " RETURNING id, name, created_at, delivery, delivery_secret_rotated_at"
);

/// Applies `patch` to `vault_id` for a live secret key of it (`hash`) at `now`, and returns its
/// settings. Safe to run twice: the second run writes the same values.
pub fn update(
    vault_id: &str,
    patch: &VaultPatch,
    hash: Value,
    now: &str,
) -> Query<Option<VaultRecord>> {
    let or_null = |value: Option<&str>| value.map_or(Value::Null, Value::from);
    Query::new(
        Stmt::new(
            UPDATE,
            vec![
                vault_id.into(),
                or_null(patch.name.as_deref()),
                or_null(patch.delivery.map(Mode::as_str)),
                hash,
                crate::delivery::new_secret().into(),
                now.into(),
            ],
        ),
        vault_record,
    )
}

// ?1 vault, ?2 the caller's key hash, ?3 this rotation's new secret, ?4 now. The new secret is
// the rotation's own mark: a resent batch (db/d1.rs) finds it in place, or as the previous secret
// once another rotation followed, and changes nothing, so a lost answer never rotates twice.
const ROTATE: &str = concat!(
    "UPDATE vaults SET delivery_secret_previous = delivery_secret, delivery_secret = ?3, ",
    "delivery_secret_rotated_at = ?4 WHERE id = ?1 AND ",
    crate::write_guard!("?2", "?1"),
    " AND delivery_secret IS NOT ?3 AND delivery_secret_previous IS NOT ?3"
);

// After the UPDATE: the vault, and whether this rotation's secret is on it (never the secret).
const ROTATED: &str = "SELECT id, name, created_at, delivery, delivery_secret_rotated_at, \
     (delivery_secret IS ?2 OR delivery_secret_previous IS ?2) AS rotated \
     FROM vaults WHERE id = ?1";

fn read_rotated(result: StmtResult) -> Result<Option<(VaultRecord, bool)>, ApiError> {
    let rotated = result
        .rows
        .first()
        .is_some_and(|row| row.get("rotated").and_then(|v| v.as_i64()) == Some(1));
    Ok(vault_record(result)?.map(|vault| (vault, rotated)))
}

/// Rotates the delivery secret of `vault_id` at `now` for a live secret key of it (`hash`): the
/// current secret becomes the previous one (still accepted), a new one the current. Returns the
/// vault, and whether this rotation is on it (false: the caller could not write).
pub fn rotate(
    vault_id: &str,
    hash: Value,
    now: &str,
) -> (Query<()>, Query<Option<(VaultRecord, bool)>>) {
    let secret = crate::delivery::new_secret();
    (
        Query::new(
            Stmt::new(
                ROTATE,
                vec![vault_id.into(), hash, secret.as_str().into(), now.into()],
            ),
            batch::ignore,
        ),
        Query::new(
            Stmt::new(ROTATED, vec![vault_id.into(), secret.into()]),
            read_rotated,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn a_new_key_needs_a_label_and_a_type_and_nothing_else() {
        assert_eq!(
            NewKeyBody::parse(JSON, br#"{"label":"CI","type":"secret"}"#).unwrap(),
            NewKeyBody {
                label: "CI".into(),
                kind: KeyKind::Secret
            }
        );
        let long = "é".repeat(MAX_LABEL_CHARS);
        let body = serde_json::json!({"label": long, "type": "public"}).to_string();
        assert!(NewKeyBody::parse(JSON, body.as_bytes()).is_ok());
        for (bad, field) in [
            (r#"{"type":"secret"}"#, "label: "),
            (r#"{"label":"","type":"secret"}"#, "label: "),
            (r#"{"label":1,"type":"secret"}"#, "label: "),
            (r#"{"label":"a\nb","type":"secret"}"#, "label: "),
            (r#"{"label":"a"}"#, "type: "),
            (r#"{"label":"a","type":"admin"}"#, "type: "),
            (r#"{"label":"a","type":"secret","x":1}"#, "x: "),
            ("[]", "body: "),
        ] {
            let err = NewKeyBody::parse(JSON, bad.as_bytes()).unwrap_err();
            assert!(err.to_string().starts_with(field), "{bad}: {err}");
        }
        let over = serde_json::json!({"label": "a".repeat(101), "type": "secret"}).to_string();
        assert!(NewKeyBody::parse(JSON, over.as_bytes()).is_err());
        assert!(
            NewKeyBody::parse(Some("text/plain"), br#"{"label":"a","type":"secret"}"#).is_err()
        );
    }

    #[test]
    fn a_vault_patch_takes_the_asset_patch_content_types_and_a_name() {
        let merge = Some("application/merge-patch+json");
        assert_eq!(
            VaultPatch::parse(merge, br#"{"name":"prod"}"#)
                .unwrap()
                .name
                .as_deref(),
            Some("prod")
        );
        assert!(VaultPatch::parse(JSON, br#"{"name":"prod"}"#).is_ok());
        assert_eq!(
            VaultPatch::parse(JSON, br#"{"delivery":"signed"}"#).unwrap(),
            VaultPatch {
                name: None,
                delivery: Some(Mode::Signed)
            }
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"name":null}"#,
            br#"{"delivery":"private"}"#,
            br#"{"delivery":null}"#,
            br#"{"delivery":true}"#,
            br#"{"id":"x"}"#,
            b"null",
        ] {
            assert!(
                matches!(
                    VaultPatch::parse(JSON, bad),
                    Err(ApiError::InvalidParams(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_created_keys_debug_form_hides_the_key() {
        let created = CreatedKey {
            record: KeyRecord {
                id: "key_1".into(),
                kind: "secret".into(),
                hint: "sk_abcd".into(),
                label: "CI".into(),
                created_at: "t".into(),
                revoked_at: None,
            },
            key: "sk_abcdefgh".into(),
        };
        let shown = format!("{created:?}");
        assert!(!shown.contains("efgh"), "{shown}");
        assert!(shown.contains("key_1"), "{shown}");
    }

    #[test]
    fn a_record_never_carries_the_key_or_its_hash() {
        let record = KeyRecord {
            id: "key_1".into(),
            kind: "secret".into(),
            hint: "sk_abcd".into(),
            label: "CI".into(),
            created_at: "t".into(),
            revoked_at: None,
        };
        let json = serde_json::to_value(&record).unwrap();
        let mut members: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        members.sort();
        assert_eq!(
            members,
            ["created_at", "hint", "id", "label", "revoked_at", "type"]
        );
    }
}
