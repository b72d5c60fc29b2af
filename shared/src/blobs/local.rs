//! Objects as files under one directory: `{root}/{key}`.
//!
//! A put writes a temporary file beside its target and renames it into place, so a reader never
//! sees half an object and a crash leaves at most a `.tmp-` file that no key names. The bytes go
//! to the file straight from the caller's buffer (for an upload, a slice of the request body), in
//! one `write` call: no copy on the way.
//!
//! Durability: no fsync, on purpose, matching the SQLite file beside it (WAL with
//! `synchronous=NORMAL`): a put survives the process crashing, and may be lost with the machine
//! (power loss, kernel panic), as may the last transactions of the record it belongs to. This
//! store is for laptops and tests; production bytes live in R2. An fsync of the file and its
//! directory per put would cost more than the write itself on most disks.
//!
//! A key's last segment can be longer than a file name may be (255 bytes on common file systems:
//! an asset id, `_` and a 255-byte filename make 288). Such an object is stored as
//! `{dirs}/.long/{sha256 of the segment}`, with its whole key beside it in a `.key` file so the
//! key can be read back.
//!
//! A directory has no URLs of its own. With the local object server configured
//! ([`super::object_urls`]), `presign_get` answers with its signed URLs, as R2 answers with
//! presigned ones; without it, `None`, and the API's routes carry the bytes.

use super::object_urls::ObjectUrls;
use super::{BlobError, Blobs, Listed, Presigned, Validity};
use crate::BoxFuture;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The longest file name common file systems allow, in bytes.
const MAX_FILE_NAME: usize = 255;
/// The directory that holds objects whose last key segment is longer than that.
const LONG_NAMES: &str = ".long";

pub struct LocalBlobs {
    root: PathBuf,
    urls: Option<ObjectUrls>,
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| BlobError::Io(format!("{}: {e}", root.display())))?;
        Ok(LocalBlobs { root, urls: None })
    }

    /// The same store, whose GETs are presigned for the local object server at `urls`.
    pub fn serving(self, urls: Option<ObjectUrls>) -> Self {
        LocalBlobs { urls, ..self }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for `key`. A key that could leave the root (`..`, absolute, empty segments,
    /// backslashes, NUL) is refused, whatever its caller validated.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        let relative = Path::new(key);
        let clean = !key.is_empty()
            && !key.contains(['\\', '\0'])
            && !key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !clean {
            return Err(BlobError::BadKey(key.to_owned()));
        }
        let (dirs, name) = key.rsplit_once('/').unwrap_or(("", key));
        if name.len() <= MAX_FILE_NAME {
            return Ok(self.root.join(relative));
        }
        let digest: String = Sha256::digest(name.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(self.root.join(dirs).join(LONG_NAMES).join(digest))
    }

    /// Where the key of a long-named object is kept (see the module comment).
    fn key_file(path: &Path) -> Option<PathBuf> {
        let in_long = path.parent()?.file_name()? == LONG_NAMES;
        in_long.then(|| path.with_extension("key"))
    }

    fn put_sync(&self, key: &str, body: &[u8]) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        let io = |e: std::io::Error| BlobError::Io(format!("put {key}: {e}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut suffix = [0u8; 8];
        crate::random::fill(&mut suffix);
        let tmp = path.with_file_name(format!(".tmp-{}", u64::from_le_bytes(suffix)));
        let mut written = std::fs::write(&tmp, body);
        if written
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::NotFound)
        {
            // A concurrent delete pruned the directory between its creation and the write.
            written = std::fs::create_dir_all(path.parent().unwrap_or(&self.root))
                .and_then(|()| std::fs::write(&tmp, body));
        }
        if let (Ok(()), Some(key_file)) = (&written, Self::key_file(&path)) {
            written = std::fs::write(key_file, key);
        }
        let written = written.and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }

    fn delete_sync(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(BlobError::Io(format!("delete {key}: {e}"))),
        }
        if let Some(key_file) = Self::key_file(&path) {
            let _ = std::fs::remove_file(key_file);
        }
        // Prune directories left empty, as S3 has no directories to leave behind. Removing a
        // directory that is not empty fails, which ends the walk.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn read_range_sync(&self, key: &str, start: u64, len: u64) -> Result<Option<Bytes>, BlobError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path_of(key)?;
        let io = |e: std::io::Error| BlobError::Io(format!("read {key}: {e}"));
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().map_err(io)?.len();
        let len = len.min(size.saturating_sub(start));
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut out).map_err(io)?;
        Ok(Some(Bytes::from(out)))
    }

    fn size_sync(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(key)?;
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Io(format!("stat {key}: {e}"))),
        }
    }
}

impl Blobs for LocalBlobs {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        _content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move { self.put_sync(key, &body) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move { self.delete_sync(key) })
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move { self.size_sync(key) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            // Only the directory the prefix names is walked: a variant count or a delete's
            // listing of an asset's variants must not read the whole store.
            let dir = prefix.rfind('/').map_or("", |end| &prefix[..=end]);
            let short = dir.split('/').all(|s| s.len() <= MAX_FILE_NAME);
            match self.path_of(dir.trim_end_matches('/')) {
                Ok(path) if !dir.is_empty() && short => self.walk(&path, dir, &mut out)?,
                _ => self.walk(&self.root, "", &mut out)?,
            }
            out.retain(|o| o.key.starts_with(prefix));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        Box::pin(async move { self.read_range_sync(key, start, len) })
    }

    /// A directory has no URLs: the API's own routes carry the bytes.
    fn presign_put<'a>(
        &'a self,
        _key: &'a str,
        _content_type: &'a str,
        _validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async { Ok(None) })
    }

    /// The local object server's signed URL, when one is configured.
    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            let Some(urls) = &self.urls else {
                return Ok(None);
            };
            // Refused here as a read of the file would be, so a URL never names a bad key.
            self.path_of(key)?;
            let expires_at = (validity.signed_at + validity.expires_in)
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Ok(Some(Presigned {
                url: urls.url(key, content_type, expires_at),
                headers: Vec::new(),
            }))
        })
    }
}

impl LocalBlobs {
    /// Collects the objects under `dir`, whose key prefix is `prefix`. A leftover `.tmp-` file is
    /// listed under its own name, so that `imgbt fsck` shows it as an object without a record
    /// (and `imgbt gc` removes it once it is old).
    fn walk(&self, dir: &Path, prefix: &str, out: &mut Vec<Listed>) -> Result<(), BlobError> {
        let io = |e: std::io::Error| BlobError::Io(format!("list {}: {e}", dir.display()));
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(io)?;
            if meta.is_dir() && name == LONG_NAMES {
                for long in std::fs::read_dir(entry.path()).map_err(io)? {
                    let long = long.map_err(io)?.path();
                    if long.extension().is_some_and(|e| e == "key") {
                        continue;
                    }
                    let key = std::fs::read_to_string(long.with_extension("key"))
                        .unwrap_or_else(|_| format!("{prefix}{LONG_NAMES}/{}", long.display()));
                    let meta = std::fs::metadata(&long).map_err(io)?;
                    out.push(listed(key, &meta));
                }
            } else if meta.is_dir() {
                self.walk(&entry.path(), &format!("{prefix}{name}/"), out)?;
            } else {
                out.push(listed(format!("{prefix}{name}"), &meta));
            }
        }
        Ok(())
    }
}

fn listed(key: String, meta: &std::fs::Metadata) -> Listed {
    // A file system without mtimes makes every object look new: gc then keeps what it cannot
    // date, which is the safe side.
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(u64::MAX, |d| d.as_millis() as u64);
    Listed {
        key,
        size: meta.len(),
        modified_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_size_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path()).unwrap();
        let key = "vault_x/p/c/ch/asset_y_photo.jpg";
        blobs
            .put(key, Bytes::from_static(b"hello"), "text/plain")
            .await
            .unwrap();
        assert_eq!(blobs.size(key).await.unwrap(), Some(5));
        assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), b"hello");
        assert_eq!(
            blobs.read_head(key, 3).await.unwrap().as_deref(),
            Some(&b"hel"[..])
        );
        assert_eq!(
            blobs.read_head(key, 100).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        blobs.delete(key).await.unwrap();
        assert_eq!(blobs.size(key).await.unwrap(), None);
        assert_eq!(blobs.read_head(key, 3).await.unwrap(), None);
        // No empty directories are left behind, and the root stays.
        assert!(!dir.path().join("vault_x").exists());
        assert!(dir.path().exists());
        // Deleting again succeeds, as on S3.
        blobs.delete(key).await.unwrap();
    }

    #[tokio::test]
    async fn keys_longer_than_a_file_name_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path()).unwrap();
        let key = format!(
            "vault_x/p/c/ch/asset_01JD0000000000000000000000_{}",
            "é".repeat(127)
        );
        blobs
            .put(&key, Bytes::from_static(b"long"), "text/plain")
            .await
            .unwrap();
        assert_eq!(blobs.size(&key).await.unwrap(), Some(4));
        let path = blobs.path_of(&key).unwrap();
        assert_eq!(
            std::fs::read_to_string(path.with_extension("key")).unwrap(),
            key
        );
        assert_eq!(
            keys_and_sizes(blobs.list("vault_x/").await.unwrap()),
            vec![(key.clone(), 4)]
        );
        blobs.delete(&key).await.unwrap();
        assert_eq!(blobs.size(&key).await.unwrap(), None);
        assert!(!dir.path().join("vault_x").exists());
    }

    #[tokio::test]
    async fn list_gives_keys_and_sizes_in_order_under_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path()).unwrap();
        for (key, body) in [
            ("v1/a/b/c/x", "xx"),
            ("v1/a/b/c/w", "w"),
            ("v2/a/b/c/y", "yyy"),
        ] {
            blobs
                .put(key, Bytes::from(body), "text/plain")
                .await
                .unwrap();
        }
        assert_eq!(
            keys_and_sizes(blobs.list("").await.unwrap()),
            vec![
                ("v1/a/b/c/w".into(), 1),
                ("v1/a/b/c/x".into(), 2),
                ("v2/a/b/c/y".into(), 3)
            ]
        );
        assert_eq!(
            keys_and_sizes(blobs.list("v2/").await.unwrap()),
            vec![("v2/a/b/c/y".into(), 3)]
        );
        // Pages resume after a key, and stop at the end.
        let page = blobs.list_page("", "v1/a/b/c/w", 1).await.unwrap();
        assert_eq!(keys_and_sizes(page), vec![("v1/a/b/c/x".into(), 2)]);
        assert!(
            blobs
                .list_page("", "v2/a/b/c/y", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn list_dates_each_object_by_its_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path()).unwrap();
        blobs
            .put("v/a/b/c/old", Bytes::from_static(b"o"), "text/plain")
            .await
            .unwrap();
        blobs
            .put("v/a/b/c/new", Bytes::from_static(b"n"), "text/plain")
            .await
            .unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("v/a/b/c/old"))
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let listed = blobs.list("v/").await.unwrap();
        let now_ms = crate::clock::Clock::default().now_ms();
        let age = |key: &str| {
            let o = listed.iter().find(|o| o.key == key).unwrap();
            now_ms.saturating_sub(o.modified_ms)
        };
        assert!(
            (7_200_000..7_260_000).contains(&age("v/a/b/c/old")),
            "{}",
            age("v/a/b/c/old")
        );
        assert!(age("v/a/b/c/new") < 60_000, "{}", age("v/a/b/c/new"));
    }

    fn keys_and_sizes(listed: Vec<Listed>) -> Vec<(String, u64)> {
        listed.into_iter().map(|o| (o.key, o.size)).collect()
    }

    #[tokio::test]
    async fn gets_are_presigned_only_with_the_object_server_configured() {
        use crate::blobs::object_urls::UrlSecret;
        use crate::secret::Secret;
        let dir = tempfile::tempdir().unwrap();
        let validity = Validity {
            signed_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000),
            expires_in: std::time::Duration::from_secs(300),
        };
        let plain = LocalBlobs::new(dir.path()).unwrap();
        assert_eq!(
            plain
                .presign_get("v/a/b/c/x", "text/plain", validity)
                .await
                .unwrap(),
            None
        );
        let secret = || UrlSecret::new(Secret::new("s".repeat(32))).unwrap();
        let urls = ObjectUrls::new("http://127.0.0.1:9001", secret()).unwrap();
        let served = LocalBlobs::new(dir.path()).unwrap().serving(Some(urls));
        let presigned = served
            .presign_get("v/a/b/c/x y", "text/plain", validity)
            .await
            .unwrap()
            .unwrap();
        let (path, query) = presigned.url.split_once('?').unwrap();
        assert_eq!(path, "http://127.0.0.1:9001/v/a/b/c/x%20y");
        assert!(presigned.headers.is_empty());
        let signed = secret().verify("v/a/b/c/x y", Some(query), 1300).unwrap();
        assert_eq!(signed.expires_at, 1300);
        assert!(matches!(
            served.presign_get("v/../x", "text/plain", validity).await,
            Err(BlobError::BadKey(_))
        ));
    }

    #[test]
    fn keys_cannot_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path()).unwrap();
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0b",
            "a/",
        ] {
            assert!(
                matches!(blobs.path_of(bad), Err(BlobError::BadKey(_))),
                "{bad:?}"
            );
        }
        assert!(blobs.path_of("vault_x/a/b/c/asset_y_..x").is_ok());
    }
}
