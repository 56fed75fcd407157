//! The protobuf wire format, schema-free: a message is a list of (field number, value)
//! pairs; a length-delimited value may itself be a message, a string, bytes or a packed
//! array, which only the reader can guess. The mutator parses requests with this, changes
//! them and encodes them again, so it can produce what no typed encoder would (duplicated
//! singular fields, wrong wire types, unknown fields, invalid UTF-8 in strings).

/// Largest field number the format allows.
pub const MAX_FIELD: u32 = (1 << 29) - 1;

/// A field's value, by wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(Vec<u8>),
    /// Wire type 5.
    Fixed32(u32),
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field number (1..=[`MAX_FIELD`]).
    pub number: u32,
    /// Its value.
    pub value: Value,
}

#[cfg(test)]
impl Field {
    /// A length-delimited field.
    pub fn bytes(number: u32, data: impl Into<Vec<u8>>) -> Field {
        Field {
            number,
            value: Value::Bytes(data.into()),
        }
    }
}

/// Reads a varint at `*pos`, advancing it; `None` when truncated or longer than 10 bytes.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Appends `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Parses `buf` as a message; `None` unless all of it is well-formed fields (groups, wire
/// types 3 and 4, are not accepted: the CRI has none).
pub fn parse(buf: &[u8]) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let number = u32::try_from(key >> 3).ok()?;
        if number == 0 || number > MAX_FIELD {
            return None;
        }
        let value = match key & 7 {
            0 => Value::Varint(read_varint(buf, &mut pos)?),
            1 => {
                let bytes = buf.get(pos..pos + 8)?;
                pos += 8;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let bytes = buf.get(pos..end)?;
                pos = end;
                Value::Bytes(bytes.to_vec())
            }
            5 => {
                let bytes = buf.get(pos..pos + 4)?;
                pos += 4;
                Value::Fixed32(u32::from_le_bytes(bytes.try_into().ok()?))
            }
            _ => return None,
        };
        fields.push(Field { number, value });
    }
    Some(fields)
}

/// Parses `buf` as a nested message worth descending into: well-formed and not empty.
/// Strings often parse as messages by accident; the mutator treats both readings as fair.
pub fn parse_nested(buf: &[u8]) -> Option<Vec<Field>> {
    parse(buf).filter(|fields| !fields.is_empty())
}

/// Appends one field.
pub fn put_field(out: &mut Vec<u8>, field: &Field) {
    let wire_type = match field.value {
        Value::Varint(_) => 0,
        Value::Fixed64(_) => 1,
        Value::Bytes(_) => 2,
        Value::Fixed32(_) => 5,
    };
    put_varint(out, (u64::from(field.number) << 3) | wire_type);
    match &field.value {
        Value::Varint(v) => put_varint(out, *v),
        Value::Fixed64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bytes(b) => {
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Fixed32(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// Encodes `fields` in order.
pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(fields));
    for field in fields {
        put_field(&mut out, field);
    }
    out
}

/// Bytes a varint of `value` takes.
pub fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros()).div_ceil(7) as usize
}

/// Bytes `field` takes encoded.
pub fn field_len(field: &Field) -> usize {
    let key = varint_len(u64::from(field.number) << 3);
    key + match &field.value {
        Value::Varint(v) => varint_len(*v),
        Value::Fixed64(_) => 8,
        Value::Bytes(b) => varint_len(b.len() as u64) + b.len(),
        Value::Fixed32(_) => 4,
    }
}

/// Bytes `fields` take encoded.
pub fn encoded_len(fields: &[Field]) -> usize {
    fields.iter().map(field_len).sum()
}

/// Whether `bytes` looks like a map entry: a message of field 1 and/or field 2 only.
fn is_map_entry(bytes: &[u8]) -> bool {
    parse(bytes).is_some_and(|fields| {
        !fields.is_empty()
            && fields.len() <= 2
            && fields.iter().all(|f| f.number == 1 || f.number == 2)
    })
}

/// A deterministic encoding of a message prost encoded: prost writes map entries in hash
/// order, which differs between processes; runs of map entries are sorted here (at every
/// depth), so that the same seed gives the same bytes in every run.
pub fn canonical(bytes: &[u8]) -> Vec<u8> {
    fn sort(fields: &mut [Field], depth: usize) {
        for field in fields.iter_mut() {
            if let Value::Bytes(b) = &mut field.value {
                if depth < 32 {
                    if let Some(mut nested) = parse_nested(b) {
                        sort(&mut nested, depth + 1);
                        *b = encode(&nested);
                    }
                }
            }
        }
        let mut start = 0;
        while start < fields.len() {
            let mut end = start + 1;
            while end < fields.len() && fields[end].number == fields[start].number {
                end += 1;
            }
            let run = &mut fields[start..end];
            let entries = run.len() > 1
                && run
                    .iter()
                    .all(|f| matches!(&f.value, Value::Bytes(b) if is_map_entry(b)));
            if entries {
                run.sort_by(|a, b| match (&a.value, &b.value) {
                    (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
            }
            start = end;
        }
    }
    match parse(bytes) {
        Some(mut fields) => {
            sort(&mut fields, 0);
            encode(&fields)
        }
        None => bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cri_api::v1;
    use prost::Message;

    #[test]
    fn varints_round_trip_and_have_their_length() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        // Truncated, and 11 continuation bytes.
        assert_eq!(read_varint(&[0x80], &mut 0), None);
        assert_eq!(read_varint(&[0xff; 11], &mut 0), None);
    }

    #[test]
    fn a_real_request_parses_and_encodes_to_the_same_bytes() {
        let request = v1::PodSandboxStatusRequest {
            pod_sandbox_id: "abc".into(),
            verbose: true,
        };
        let bytes = request.encode_to_vec();
        let fields = parse(&bytes).unwrap();
        assert_eq!(
            fields,
            [
                Field::bytes(1, "abc"),
                Field {
                    number: 2,
                    value: Value::Varint(1)
                }
            ]
        );
        assert_eq!(encode(&fields), bytes);
        assert_eq!(encoded_len(&fields), bytes.len());
    }

    #[test]
    fn nested_messages_parse_at_each_level() {
        let request = v1::RunPodSandboxRequest {
            config: Some(v1::PodSandboxConfig {
                metadata: Some(v1::PodSandboxMetadata {
                    name: "n".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            runtime_handler: String::new(),
        };
        let outer = parse(&request.encode_to_vec()).unwrap();
        let Value::Bytes(config) = &outer[0].value else {
            panic!("config is length-delimited")
        };
        let config = parse_nested(config).unwrap();
        let Value::Bytes(metadata) = &config[0].value else {
            panic!("metadata is length-delimited")
        };
        assert_eq!(parse_nested(metadata).unwrap(), [Field::bytes(1, "n")]);
    }

    #[test]
    fn canonical_encoding_sorts_map_entries_only() {
        let labels: std::collections::HashMap<String, String> = (0..50)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let a = v1::PodSandboxConfig {
            labels: labels.clone(),
            dns_config: Some(v1::DnsConfig {
                servers: vec!["z".into(), "a".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        // Another map with the same content, built in another order.
        let mut b = a.clone();
        b.labels = labels
            .into_iter()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let (ca, cb) = (canonical(&a.encode_to_vec()), canonical(&b.encode_to_vec()));
        assert_eq!(ca, cb);
        let decoded = v1::PodSandboxConfig::decode(ca.as_slice()).unwrap();
        assert_eq!(decoded, a);
        // Repeated strings keep their order.
        assert_eq!(decoded.dns_config.unwrap().servers, ["z", "a"]);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(parse(&[]), Some(vec![]));
        assert_eq!(parse_nested(&[]), None);
        // Field number 0; group wire types; a length past the end; a truncated fixed64.
        for bad in [
            &[0x00, 0x01][..],
            &[0x0b],
            &[0x0a, 0x05, b'a'],
            &[0x09, 1, 2],
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
