//! `POST /api/v1/vaults/{vaultId}/keys`: a new key for the vault, shown in the answer once and
//! stored only hashed. Only a secret key of the vault may create keys.
//!
//! One batch: the key lookup, the insert (guarded by the caller's key, and a no-op when its row
//! is there), and the probe that finds the new row by its id and hash, so that a resent batch
//! answers with the key its first run stored.
//!
//! Contract: docs/API.md#key-management.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::{self, Access};
use shared::http::{begin, body_bytes, content_type, json_response, serve};
use shared::keys::{self, CreatedKey, NewKeyBody};
use shared::{ApiError, Deps, batch, clock, ids, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("key_create", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("key_create"))?;
    // A bad body is reported only after the key is checked: authentication comes first.
    let body = NewKeyBody::parse(content_type(&req).as_deref(), body_bytes(&req));
    let ms = deps.clock.now_ms();
    let new = body.as_ref().ok().map(|body| {
        let key_id = ids::new_key_id(ms);
        let key = auth::generate_key(body.kind);
        let insert = keys::insert(
            &key_id,
            &target.vault_id,
            body.kind,
            &key,
            &body.label,
            &clock::format_ms(ms),
            Some(credential.hash_param()),
        );
        let probe = keys::created(&key_id, &key);
        (key, batch::Query::new(insert, batch::ignore), probe)
    });
    let (key_on_file, created) = match new {
        Some((key, insert, probe)) => {
            let (found, (), record) =
                batch::run(&*deps.db, (credential.lookup(), insert, probe)).await?;
            (found, Some((key, record)))
        }
        None => (batch::run(&*deps.db, credential.lookup()).await?, None),
    };
    key_on_file.check(&target.vault_id, Access::Write)?;
    body?;
    let (key, record) = created.ok_or_else(|| ApiError::internal("a valid body is inserted"))?;
    let record = record
        .ok_or_else(|| ApiError::internal("a key insert an authorised caller sent left no row"))?;
    keys::log_change(&req, &target.vault_id, &record.id, "create");
    json_response(StatusCode::CREATED, &CreatedKey { record, key })
}
