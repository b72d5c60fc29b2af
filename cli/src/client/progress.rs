//! Progress bars on stderr, and a file read as a stream of chunks that moves one.
//!
//! A bar is drawn only when stderr is a terminal and the command prints text: with `--json`, or
//! in a pipe or a log, nothing is drawn.

use super::{ClientError, other};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use tokio::io::AsyncReadExt;

/// How much of a file is read (and held) at a time.
pub const CHUNK: usize = 256 * 1024;

/// A bar for `len` bytes, labelled `label`; hidden unless `show` and stderr is a terminal.
pub fn bar(len: u64, show: bool, label: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(label.to_owned());
    bar
}

/// Opens `path` and checks that it still has `size` bytes (it is read again on each attempt).
pub async fn open_sized(path: &Path, size: u64) -> Result<tokio::fs::File, ClientError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| other(format!("{}: {e}", path.display())))?;
    let now = file
        .metadata()
        .await
        .map_err(|e| other(format!("{}: {e}", path.display())))?
        .len();
    if now != size {
        return Err(other(format!(
            "{}: the file changed size while imgbt was uploading it ({size} bytes, now {now})",
            path.display()
        )));
    }
    Ok(file)
}

/// The first `size` bytes of `file`, `CHUNK` at a time, moving `bar` as they are read. A file
/// that ends early is an error rather than a short body.
pub fn file_chunks(
    file: tokio::fs::File,
    size: u64,
    bar: ProgressBar,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::try_unfold((file, size, bar), |(mut file, left, bar)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            let n = file.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was being uploaded",
                ));
            }
            filled += n;
        }
        bar.inc(want as u64);
        Ok(Some((buf.freeze(), (file, left - want as u64, bar))))
    })
}

/// `n` bytes for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(104_857_600), "100.0 MiB");
    }

    #[tokio::test]
    async fn a_file_streams_in_chunks_and_a_short_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK * 2 + 10)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = open_sized(&path, data.len() as u64).await.unwrap();
        let chunks: Vec<Bytes> = file_chunks(file, data.len() as u64, ProgressBar::hidden())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks.concat(), data);

        assert!(open_sized(&path, 5).await.is_err());
        let file = tokio::fs::File::open(&path).await.unwrap();
        let result: std::io::Result<Vec<Bytes>> =
            file_chunks(file, data.len() as u64 + 1, ProgressBar::hidden())
                .try_collect()
                .await;
        assert!(result.is_err());
    }
}
