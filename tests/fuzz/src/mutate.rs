//! The mutator: takes a request's protobuf bytes and returns hostile variants, at the wire
//! level. Length-delimited fields that parse as messages are descended into; leaves get
//! hostile strings (very long, `\n`, `\x7f`, NUL, invalid UTF-8, `../`, unicode, format
//! strings), extreme integers, wrong wire types; messages lose, gain, duplicate and reorder
//! fields and grow huge maps; whole requests get truncated, corrupted or replaced by noise.
//! Nothing it returns is longer than the byte budget it is given.

use crate::rng::Rng;
use crate::wire::{self, Field, Value};

/// Short hostile strings, used as they are or spliced into other values.
const HOSTILE: &[&[u8]] = &[
    b"",
    b" ",
    b"\n",
    b"a\nb",
    b"\r\n",
    b"\r\nX-Injected: 1",
    b"\x7f",
    b"a\x7fb",
    b"\0",
    b"a\0b",
    b"\t",
    b"\x1b[31m",
    b"\xff\xfe",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"..",
    b"../",
    b"../../../../../../etc/passwd",
    b"/",
    b"//",
    b".",
    b"/..",
    b"a/../../b",
    b"%2e%2e%2f",
    b"%00",
    b"%s%s%s%n",
    b"{}",
    b"${HOME}",
    b"$(id)",
    b"`id`",
    b"\"",
    b"'",
    b"\\",
    b"]\n[x]\nk = 1",
    b"{\"a\":",
    b"-1",
    b"0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"NaN",
    b"1e999",
    b":",
    b"@",
    b"a@sha256:",
    b"sha256:",
    b"sha256:0000000000000000000000000000000000000000000000000000000000000000",
    b"UPPER/Case:Tag",
    b"x:",
    b"localhost:0/x",
    b"127.0.0.1:1/x:y",
    b"[::1]:1/x",
    b"a:b:c:d",
    b"\xc3\xbc",
    b"\xe6\x97\xa5\xe6\x9c\xac",
    b"\xe2\x80\xae",
    b"\xe2\x80\x8b",
    b"\xef\xbb\xbf",
    b"\xf0\x9f\x92\xa5",
    b"e\xcc\x81",
    b"\xe2\x80\xa8",
    b"/proc/self/root",
    b"/sys/fs/cgroup",
    b"/kubepods/burstable/pod1",
    b"kubepods-burstable.slice",
    b"a.slice",
    b"-.slice",
    b"berth.sock",
];

/// Lengths that sit on either side of the limits a server is likely to have.
const LENGTHS: &[usize] = &[
    1,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    257,
    1023,
    1024,
    4095,
    4096,
    4097,
    16383,
    16384,
    16385,
    65535,
    65536,
    262_144,
    1 << 20,
    4 << 20,
];

/// Integers at the edges of the types protobuf carries (as varints: negative int32 and
/// int64 values are sign-extended to 64 bits).
const EXTREMES: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    (-2i64) as u64,
    i32::MIN as i64 as u64,
    (-1000i64) as u64,
    1000,
    65536,
];

/// A hostile byte string of at most `max` bytes.
pub fn hostile(rng: &mut Rng, max: usize, splice: &[Vec<u8>]) -> Vec<u8> {
    let pick_len = |rng: &mut Rng| (*rng.pick(LENGTHS)).min(max);
    let out = match rng.below(12) {
        0..=3 => rng.pick(HOSTILE).to_vec(),
        4 => vec![b'a'; pick_len(rng)],
        5 => {
            // Long, multi-byte: cut on a character boundary or, half of the time, not.
            const UNITS: [&[u8]; 3] = [b"\xc3\xbc", b"\xe6\x97\xa5", b"\xf0\x9f\x92\xa5"];
            let unit = UNITS[rng.below(UNITS.len())];
            let mut s = unit.repeat(pick_len(rng) / unit.len() + 1);
            let len = pick_len(rng);
            s.truncate(if rng.chance(1, 2) {
                len
            } else {
                len - len % unit.len()
            });
            s
        }
        6 => b"../".repeat(pick_len(rng) / 3 + 1),
        7 => {
            let unit = rng.pick(HOSTILE).to_vec();
            if unit.is_empty() {
                vec![b'\n'; pick_len(rng)]
            } else {
                unit.repeat(pick_len(rng) / unit.len() + 1)
            }
        }
        8 => {
            let n = pick_len(rng);
            rng.bytes(n)
        }
        9 if !splice.is_empty() => {
            // A real value (an ID, an image name) with something hostile around it.
            let base = rng.pick(splice).clone();
            let extra = rng.pick(HOSTILE).to_vec();
            match rng.below(3) {
                0 => [base, extra].concat(),
                1 => [extra, base].concat(),
                _ => base[..rng.below(base.len() + 1)].to_vec(),
            }
        }
        _ => {
            // Printable ASCII noise with a control character somewhere.
            let n = rng.range(1, 64).min(max.max(1));
            let mut s: Vec<u8> = (0..n).map(|_| rng.range(0x20, 0x7e) as u8).collect();
            let at = rng.below(s.len() + 1);
            s.insert(at, *rng.pick(&[0u8, b'\n', 0x7f, b'\r', 0x1b]));
            s
        }
    };
    let mut out = out;
    out.truncate(max);
    out
}

/// Returns a mutated copy of `input`, at most `budget` bytes long. `splice` holds real
/// values (IDs, image names) worth mixing in.
pub fn mutate(rng: &mut Rng, input: &[u8], budget: usize, splice: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(3) + usize::from(rng.chance(1, 8)) * 4;
    for _ in 0..rounds {
        data = if rng.chance(6, 7) {
            match wire::parse(&data) {
                Some(mut fields) => {
                    let room = budget.saturating_sub(data.len());
                    mutate_message(rng, &mut fields, room, splice, 0);
                    wire::encode(&fields)
                }
                None => mutate_bytes(rng, data, budget),
            }
        } else {
            mutate_bytes(rng, data, budget)
        };
        if data.len() > budget {
            data.truncate(budget);
        }
    }
    data
}

/// Byte-level damage to a whole encoding.
fn mutate_bytes(rng: &mut Rng, mut data: Vec<u8>, budget: usize) -> Vec<u8> {
    match rng.below(7) {
        0 => {
            let at = rng.below(data.len() + 1);
            data.truncate(at);
        }
        1 if !data.is_empty() => {
            for _ in 0..rng.range(1, 8) {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
        }
        2 if !data.is_empty() => {
            // A length or tag byte turned into a huge or continued varint.
            let at = rng.below(data.len());
            data[at] = *rng.pick(&[0xff, 0x80, 0x7f, 0x00]);
        }
        3 => {
            let n = rng.range(1, 64);
            data.extend(rng.bytes(n));
        }
        4 => {
            let n = rng.range(1, 16);
            let at = rng.below(data.len() + 1);
            let noise = rng.bytes(n);
            data.splice(at..at, noise);
        }
        5 => {
            let n = (*rng.pick(LENGTHS)).min(budget);
            data = rng.bytes(n);
        }
        _ => {
            // Repeat the whole message: every singular field appears twice or more.
            let times = rng.range(2, 4);
            data = data.repeat(times);
        }
    }
    data.truncate(budget);
    data
}

/// Changes `fields` (one message) in place; `room` is how many bytes it may grow by.
fn mutate_message(
    rng: &mut Rng,
    fields: &mut Vec<Field>,
    room: usize,
    splice: &[Vec<u8>],
    depth: usize,
) {
    if fields.is_empty() || rng.chance(1, 6) {
        mutate_structure(rng, fields, room, splice);
        return;
    }
    let i = rng.below(fields.len());
    // Descend into a nested message most of the time: the deep fields are where the
    // interesting values are.
    if depth < 24 && rng.chance(3, 4) {
        if let Value::Bytes(inner) = &fields[i].value {
            if let Some(mut nested) = wire::parse_nested(inner) {
                mutate_message(rng, &mut nested, room, splice, depth + 1);
                fields[i].value = Value::Bytes(wire::encode(&nested));
                return;
            }
        }
    }
    mutate_field(rng, &mut fields[i], room, splice);
}

/// Changes one field's value (or number, or wire type).
fn mutate_field(rng: &mut Rng, field: &mut Field, room: usize, splice: &[Vec<u8>]) {
    if rng.chance(1, 12) {
        field.number = match rng.below(4) {
            0 => field.number.saturating_add(1).min(wire::MAX_FIELD),
            1 => field.number.saturating_sub(1).max(1),
            2 => rng.range(1, 32) as u32,
            _ => wire::MAX_FIELD,
        };
        return;
    }
    if rng.chance(1, 12) {
        // The same number with another wire type.
        field.value = match field.value {
            Value::Bytes(_) => Value::Varint(*rng.pick(EXTREMES)),
            _ => Value::Bytes(hostile(rng, room.min(64), splice)),
        };
        return;
    }
    match &mut field.value {
        Value::Varint(v) => {
            *v = match rng.below(4) {
                0 | 1 => *rng.pick(EXTREMES),
                2 => v.wrapping_add(rng.below(5) as u64).wrapping_sub(2),
                _ => rng.next_u64() >> rng.below(64),
            }
        }
        Value::Fixed64(v) => *v = *rng.pick(EXTREMES),
        Value::Fixed32(v) => *v = *rng.pick(EXTREMES) as u32,
        Value::Bytes(b) => {
            let old = b.len();
            let new = match rng.below(6) {
                0..=2 => hostile(rng, room + old, splice),
                3 => {
                    // Something hostile inserted inside the real value.
                    let mut s = b.clone();
                    let at = rng.below(s.len() + 1);
                    let extra = hostile(rng, room.min(256), splice);
                    s.splice(at..at, extra);
                    s
                }
                4 => b[..rng.below(old + 1)].to_vec(),
                _ => {
                    // The real value, repeated up to a long length.
                    if b.is_empty() {
                        vec![b'x'; (*rng.pick(LENGTHS)).min(room)]
                    } else {
                        let times = ((*rng.pick(LENGTHS)).min(room + old) / old).max(1);
                        b.repeat(times)
                    }
                }
            };
            *b = new;
        }
    }
}

/// Message-level changes: fields dropped, duplicated, added, reordered; maps grown.
fn mutate_structure(rng: &mut Rng, fields: &mut Vec<Field>, room: usize, splice: &[Vec<u8>]) {
    match rng.below(6) {
        0 if !fields.is_empty() => {
            fields.remove(rng.below(fields.len()));
        }
        1 if !fields.is_empty() => {
            let i = rng.below(fields.len());
            let copy = fields[i].clone();
            if wire::field_len(&copy) <= room {
                fields.insert(rng.below(fields.len() + 1), copy);
            }
        }
        2 if fields.len() > 1 => {
            let (a, b) = (rng.below(fields.len()), rng.below(fields.len()));
            fields.swap(a, b);
        }
        3 if !fields.is_empty() => grow_repeated(rng, fields, room, splice),
        _ => {
            // A new field: a known number with any type, or an unknown one.
            let number = if rng.chance(1, 2) {
                rng.range(1, 24) as u32
            } else {
                rng.range(25, wire::MAX_FIELD as usize) as u32
            };
            let value = match rng.below(4) {
                0 => Value::Varint(*rng.pick(EXTREMES)),
                1 => Value::Fixed64(rng.next_u64()),
                2 => Value::Fixed32(rng.next_u64() as u32),
                _ => Value::Bytes(hostile(rng, room.saturating_sub(8), splice)),
            };
            let field = Field { number, value };
            if wire::field_len(&field) <= room {
                fields.insert(rng.below(fields.len() + 1), field);
            }
        }
    }
}

/// Repeats one field many times with varied contents: a huge map when it is a map entry
/// (`{1: key, 2: value}`), a long repeated field otherwise.
fn grow_repeated(rng: &mut Rng, fields: &mut Vec<Field>, room: usize, splice: &[Vec<u8>]) {
    let i = rng.below(fields.len());
    let template = fields[i].clone();
    let wanted = *rng.pick(&[16usize, 256, 4096, 65536, 1 << 20]);
    let mut used = 0;
    let mut added = Vec::new();
    for n in 0..wanted {
        let mut field = template.clone();
        if let Value::Bytes(b) = &mut field.value {
            // Vary the key of a map entry, or the whole value otherwise, so the receiver
            // cannot deduplicate.
            match wire::parse_nested(b) {
                Some(mut entry) if entry.first().is_some_and(|f| f.number == 1) => {
                    if let Value::Bytes(key) = &mut entry[0].value {
                        key.extend_from_slice(format!("-{n}").as_bytes());
                    }
                    *b = wire::encode(&entry);
                }
                _ if n % 7 == 3 => *b = hostile(rng, 64, splice),
                _ => b.extend_from_slice(format!("{n}").as_bytes()),
            }
        }
        used += wire::field_len(&field);
        if used > room {
            break;
        }
        added.push(field);
    }
    fields.splice(i + 1..i + 1, added);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cri_api::v1;
    use prost::Message;

    fn sample() -> Vec<u8> {
        v1::RunPodSandboxRequest {
            config: Some(v1::PodSandboxConfig {
                metadata: Some(v1::PodSandboxMetadata {
                    name: "pod".into(),
                    uid: "uid".into(),
                    namespace: "ns".into(),
                    attempt: 1,
                }),
                labels: [("a".to_string(), "b".to_string())].into(),
                log_directory: "/tmp/x".into(),
                ..Default::default()
            }),
            runtime_handler: String::new(),
        }
        .encode_to_vec()
    }

    #[test]
    fn same_seed_same_mutation() {
        let input = sample();
        for stream in 0..200 {
            let a = mutate(&mut Rng::new(42, stream), &input, 1 << 16, &[]);
            let b = mutate(&mut Rng::new(42, stream), &input, 1 << 16, &[]);
            assert_eq!(a, b, "stream {stream}");
        }
    }

    #[test]
    fn budget_is_never_exceeded_and_output_varies() {
        let input = sample();
        let mut distinct = std::collections::BTreeSet::new();
        let mut undecodable = 0;
        for stream in 0..2000 {
            let out = mutate(&mut Rng::new(1, stream), &input, 4096, &[b"abc".to_vec()]);
            assert!(out.len() <= 4096, "stream {stream}: {} bytes", out.len());
            if v1::RunPodSandboxRequest::decode(out.as_slice()).is_err() {
                undecodable += 1;
            }
            distinct.insert(out);
        }
        assert!(distinct.len() > 1500, "only {} distinct", distinct.len());
        // Both kinds are produced: requests the server must decode and reject, and
        // requests it cannot decode at all.
        assert!(undecodable > 100 && undecodable < 1900, "{undecodable}");
    }

    #[test]
    fn hostile_strings_respect_their_bound() {
        let mut rng = Rng::new(3, 3);
        for _ in 0..5000 {
            assert!(hostile(&mut rng, 100, &[b"id".to_vec()]).len() <= 100);
        }
    }

    #[test]
    fn maps_grow_with_distinct_keys() {
        let mut fields = wire::parse(&sample()).unwrap();
        let Value::Bytes(config) = &fields[0].value else {
            unreachable!()
        };
        let mut config = wire::parse(config).unwrap();
        let labels = config.iter().position(|f| f.number == 6).unwrap();
        let mut only_labels = vec![config.remove(labels)];
        let mut rng = Rng::new(5, 5);
        grow_repeated(&mut rng, &mut only_labels, 1 << 20, &[]);
        assert!(only_labels.len() > 16, "{}", only_labels.len());
        config.extend(only_labels);
        fields[0].value = Value::Bytes(wire::encode(&config));
        let request = v1::RunPodSandboxRequest::decode(wire::encode(&fields).as_slice()).unwrap();
        assert!(request.config.unwrap().labels.len() > 16);
    }
}
