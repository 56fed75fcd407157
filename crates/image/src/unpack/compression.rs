//! Layer compression: which decoder a layer media type needs, and the decoder itself.

use std::io::Read;

use super::UnpackError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (possibly several concatenated members).
    Gzip,
    /// zstd (possibly several frames).
    Zstd,
}

impl Compression {
    /// The compression of a layer media type: the OCI layer types (including the deprecated
    /// non-distributable ones) and Docker schema 2 layers (including foreign ones). Anything
    /// else, encrypted layers included, is [`UnpackError::UnsupportedMediaType`].
    pub fn from_media_type(mt: &str) -> Result<Compression, UnpackError> {
        let compression = match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            other => return Err(UnpackError::UnsupportedMediaType(other.to_owned())),
        };
        Ok(compression)
    }
}

/// Wraps `reader` in the decoder for `c`. Decoding errors surface as I/O errors on read.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
    c: Compression,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    Ok(match c {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(
                zstd::Decoder::new(reader).map_err(|source| UnpackError::Decoder {
                    codec: "zstd",
                    source,
                })?,
            )
        }
    })
}
