//! `images import` and `images export`.
//!
//! Import streams the archive in chunks of [`CHUNK_SIZE`] from a reader thread (a file or
//! standard input); a read error cancels the call, so berthd keeps nothing of it. Export
//! writes to `FILE.partial-<pid>` beside FILE and renames it into place once berthd's
//! stream ended without error (nothing is left on failure); `-o -` writes standard output.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use berth_admin_api::v1;
use berth_admin_api::{AdminClient, CHUNK_SIZE};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::error::CtlError;

/// Chunks read ahead of the upload.
const READ_AHEAD: usize = 4;

/// Whether `path` means standard input or output.
fn is_std(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// `berthctl images import [--pin] FILE|-`
pub async fn import(
    admin: &mut AdminClient<Channel>,
    file: &Path,
    pin: bool,
) -> Result<(), CtlError> {
    let read_error = |source| CtlError::Read {
        path: file.to_owned(),
        source,
    };
    let mut input: Box<dyn std::io::Read + Send> = if is_std(file) {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).map_err(read_error)?)
    };
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let (failed_tx, failed_rx) = oneshot::channel::<std::io::Error>();
    std::thread::spawn(move || {
        let mut first = true;
        loop {
            let mut data = vec![0u8; CHUNK_SIZE];
            let n = match read_full(&mut input, &mut data) {
                Ok(n) => n,
                Err(err) => {
                    let _ = failed_tx.send(err);
                    return;
                }
            };
            if n == 0 && !first {
                return;
            }
            data.truncate(n);
            let message = v1::ImportImagesRequest { pin, data };
            first = false;
            if tx.blocking_send(message).is_err() || n == 0 {
                return;
            }
        }
    });
    let call = admin.import_images(ReceiverStream::new(rx));
    let response = tokio::select! {
        // The reader reports its failure before it ends the stream: checked first.
        biased;
        // The call is dropped, which cancels it: berthd discards what it received.
        Ok(err) = failed_rx => return Err(read_error(err)),
        response = call => response,
    };
    let response = response
        .map_err(|status| CtlError::Rpc {
            rpc: "ImportImages",
            status,
        })?
        .into_inner();
    for image in response.images {
        let mut line = format!("imported {}", image.id);
        if !image.repo_tags.is_empty() {
            line.push_str(&format!(" {}", image.repo_tags.join(" ")));
        }
        if image.pinned {
            line.push_str(" (pinned)");
        }
        println!("{line}");
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends.
fn read_full(input: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// `berthctl images export REF... -o FILE|-`
pub async fn export(
    admin: &mut AdminClient<Channel>,
    refs: Vec<String>,
    output: &Path,
) -> Result<(), CtlError> {
    let write_error = |source| CtlError::Write {
        path: output.to_owned(),
        source,
    };
    if is_std(output) && std::io::stdout().is_terminal() {
        return Err(CtlError::Terminal);
    }
    let mut stream = admin
        .export_images(v1::ExportImagesRequest { refs })
        .await
        .map_err(|status| CtlError::Rpc {
            rpc: "ExportImages",
            status,
        })?
        .into_inner();
    let partial = partial_path(output);
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &partial {
        None => Box::new(tokio::io::stdout()),
        Some(partial) => Box::new(
            tokio::fs::File::create(partial)
                .await
                .map_err(write_error)?,
        ),
    };
    let written: Result<(), CtlError> = async {
        while let Some(message) = stream.message().await.map_err(|status| CtlError::Rpc {
            rpc: "ExportImages",
            status,
        })? {
            out.write_all(&message.data).await.map_err(write_error)?;
        }
        out.flush().await.map_err(write_error)?;
        if let Some(file) = &partial {
            // Complete and on disk before it takes the name.
            let written = tokio::fs::File::open(file).await.map_err(write_error)?;
            written.sync_all().await.map_err(write_error)?;
            tokio::fs::rename(file, output).await.map_err(write_error)?;
        }
        Ok(())
    }
    .await;
    if written.is_err() {
        if let Some(file) = &partial {
            let _ = std::fs::remove_file(file);
        }
    }
    written
}

/// Where an export to `output` is written before it is complete; `None` for stdout.
fn partial_path(output: &Path) -> Option<PathBuf> {
    if is_std(output) {
        return None;
    }
    let mut name = output.file_name().unwrap_or_default().to_owned();
    name.push(format!(".partial-{}", std::process::id()));
    Some(output.with_file_name(name))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn partial_files_sit_beside_the_output() {
        let partial = partial_path(Path::new("/tmp/out/images.tar")).unwrap();
        assert_eq!(partial.parent(), Some(Path::new("/tmp/out")));
        assert!(partial
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("images.tar.partial-"));
        assert_eq!(partial_path(Path::new("-")), None);
    }

    #[test]
    fn reads_fill_whole_chunks() {
        let data = vec![7u8; 2500];
        let mut input = std::io::Cursor::new(data).chain(std::io::Cursor::new(vec![8u8; 100]));
        let mut buf = vec![0u8; 1000];
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 1000);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 1000);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 600);
        assert_eq!(read_full(&mut input, &mut buf).unwrap(), 0);
    }
}
