//! The versioned value envelope and the [`Record`] trait.
//!
//! ```text
//! byte 0      format tag: 0x01 = JSON body (serde_json); every other value is reserved
//! bytes 1..3  record version, u16 big-endian
//! bytes 3..   body, in the shape of that record version
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DecodeError, StoreError};

/// Format tag of a JSON body.
pub const FORMAT_JSON: u8 = 0x01;

/// Length of the envelope header (format tag + version).
pub const HEADER_LEN: usize = 3;

/// A typed record kept in one sled tree.
///
/// `VERSION` is the version written by this build. `decode_version` must read every version
/// from 1 to `VERSION`, upgrading older ones in memory (the record is written back in the
/// current version the next time it is stored). Versions above `VERSION` never reach it: the
/// store reports them as [`StoreError::UnsupportedVersion`] first.
pub trait Record: Serialize + Sized {
    /// The sled tree holding these records.
    const TREE: &'static str;
    /// The version this build writes.
    const VERSION: u16;

    /// The key this record is stored under (its id).
    fn key(&self) -> &str;

    /// Decode a body written as `version`, upgrading it to the current shape.
    fn decode_version(version: u16, body: &[u8]) -> Result<Self, DecodeError>;
}

/// Parse a JSON body; a helper for [`Record::decode_version`] implementations.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(body)?)
}

/// Wrap a body in the envelope.
pub(crate) fn envelope(version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(FORMAT_JSON);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encode a record in its current version.
pub(crate) fn encode<R: Record>(record: &R) -> Result<Vec<u8>, StoreError> {
    let mut out = envelope(R::VERSION, &[]);
    serde_json::to_writer(&mut out, record).map_err(|source| StoreError::Encode {
        tree: R::TREE,
        key: record.key().to_owned(),
        source,
    })?;
    Ok(out)
}

/// Decode the value stored under `key`, checking the envelope, the version and that the
/// record's id matches the key.
pub(crate) fn decode<R: Record>(key: &[u8], value: &[u8]) -> Result<R, StoreError> {
    let corrupt = |source| StoreError::Decode {
        tree: R::TREE,
        key: key_text(key),
        source,
    };
    if value.len() < HEADER_LEN {
        return Err(corrupt(DecodeError::Truncated {
            expected: HEADER_LEN,
            found: value.len(),
        }));
    }
    if value[0] != FORMAT_JSON {
        return Err(corrupt(DecodeError::UnknownFormat(value[0])));
    }
    let version = u16::from_be_bytes([value[1], value[2]]);
    let unsupported = || StoreError::UnsupportedVersion {
        tree: R::TREE,
        key: key_text(key),
        version,
        supported: R::VERSION,
    };
    if version == 0 || version > R::VERSION {
        return Err(unsupported());
    }
    let record = match R::decode_version(version, &value[HEADER_LEN..]) {
        Ok(record) => record,
        Err(DecodeError::UnknownVersion(_)) => return Err(unsupported()),
        Err(e) => return Err(corrupt(e)),
    };
    if record.key().as_bytes() != key {
        return Err(corrupt(DecodeError::KeyMismatch {
            found: record.key().to_owned(),
        }));
    }
    Ok(record)
}

/// A key as text for error messages and logs.
pub(crate) fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        id: String,
        n: u32,
    }

    impl Record for Thing {
        const TREE: &'static str = "things";
        const VERSION: u16 = 1;
        fn key(&self) -> &str {
            &self.id
        }
        fn decode_version(version: u16, body: &[u8]) -> Result<Self, DecodeError> {
            match version {
                1 => decode_json(body),
                v => Err(DecodeError::UnknownVersion(v)),
            }
        }
    }

    fn thing() -> Thing {
        Thing {
            id: "a".into(),
            n: 7,
        }
    }

    #[test]
    fn round_trip_has_header() {
        let bytes = encode(&thing()).unwrap();
        assert_eq!(&bytes[..3], &[FORMAT_JSON, 0, 1]);
        assert_eq!(&bytes[3..], br#"{"id":"a","n":7}"#);
        assert_eq!(decode::<Thing>(b"a", &bytes).unwrap(), thing());
    }

    #[test]
    fn short_value_is_truncated() {
        for value in [&b""[..], &[FORMAT_JSON][..], &[FORMAT_JSON, 0][..]] {
            let err = decode::<Thing>(b"a", value).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Decode {
                        source: DecodeError::Truncated { .. },
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_format_tag() {
        let err = decode::<Thing>(b"a", b"\x07\x00\x01{}").unwrap_err();
        assert!(matches!(
            err,
            StoreError::Decode {
                source: DecodeError::UnknownFormat(7),
                ..
            }
        ));
    }

    #[test]
    fn version_zero_and_newer_are_unsupported() {
        for version in [0u16, 2, u16::MAX] {
            let err =
                decode::<Thing>(b"a", &envelope(version, br#"{"id":"a","n":1}"#)).unwrap_err();
            match err {
                StoreError::UnsupportedVersion {
                    tree,
                    key,
                    version: v,
                    supported,
                } => {
                    assert_eq!(
                        (tree, key.as_str(), v, supported),
                        ("things", "a", version, 1)
                    );
                }
                other => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn key_mismatch_is_corruption() {
        let bytes = encode(&thing()).unwrap();
        let err = decode::<Thing>(b"b", &bytes).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Decode {
                source: DecodeError::KeyMismatch { .. },
                ..
            }
        ));
    }

    #[test]
    fn bad_json_names_tree_and_key() {
        let err = decode::<Thing>(b"a", &envelope(1, b"{not json")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("things") && text.contains("\"a\""), "{text}");
    }
}
