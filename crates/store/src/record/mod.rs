//! The records berthd keeps, one per tree.

mod container;
mod image;
mod sandbox;

pub use container::{ContainerExit, ContainerIntent, ContainerRecord, ContainerState};
pub use image::ImageRecord;
pub use sandbox::{SandboxIntent, SandboxRecord, SandboxState};

/// Serde adapter storing opaque bytes (raw CRI configs) as one base64 string in the JSON body
/// instead of an array of numbers.
pub(crate) mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }

    #[cfg(test)]
    mod tests {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Blob(#[serde(with = "super")] Vec<u8>);

        #[test]
        fn round_trip_is_a_string() {
            let blob = Blob(vec![0, 1, 2, 254, 255]);
            let json = serde_json::to_string(&blob).unwrap();
            assert_eq!(json, r#""AAEC/v8=""#);
            assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), blob);
        }

        #[test]
        fn rejects_non_base64() {
            assert!(serde_json::from_str::<Blob>(r#""@@@""#).is_err());
        }
    }
}
