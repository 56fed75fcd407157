//! The stream around the archive: media types, decompression and reading to the end.

use std::fs;
use std::io::{Cursor, Read, Write};

use super::{Fixture, Layer};
use crate::unpack::{apply_layer, decompress, Compression, Limits, UnpackError};

fn sample() -> Vec<u8> {
    Layer::new()
        .dir("etc", 0o755)
        .file("etc/os-release", 0o644, b"ID=berth\n")
        .file("big", 0o644, &vec![7u8; 300_000])
        .finish()
}

#[test]
fn unpack_media_types() {
    use Compression::*;
    for (mt, want) in [
        ("application/vnd.oci.image.layer.v1.tar", None),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Gzip,
        ),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Gzip,
        ),
    ] {
        assert_eq!(Compression::from_media_type(mt).unwrap(), want, "{mt}");
    }
    for mt in [
        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        "application/json",
        "",
    ] {
        let err = Compression::from_media_type(mt).unwrap_err();
        assert!(
            matches!(err, UnpackError::UnsupportedMediaType(ref m) if m == mt),
            "{err:?}"
        );
    }
}

fn check_sample(fx: &Fixture) {
    assert_eq!(fs::read(fx.path("etc/os-release")).unwrap(), b"ID=berth\n");
    assert_eq!(fs::read(fx.path("big")).unwrap().len(), 300_000);
}

#[test]
fn unpack_gzip_round_trip_with_several_members() {
    let tar = sample();
    let (head, tail) = tar.split_at(1000);
    let mut gz = Vec::new();
    for part in [head, tail] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        gz.extend_from_slice(&enc.finish().unwrap());
    }
    let fx = Fixture::new();
    let mut input = Cursor::new(&gz);
    let stats = apply_layer(
        decompress(&mut input, Compression::Gzip).unwrap(),
        &fx.layer,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(stats.bytes, 300_009);
    check_sample(&fx);
    assert_eq!(
        input.position(),
        gz.len() as u64,
        "compressed input not read to the end"
    );
}

#[test]
fn unpack_zstd_round_trip() {
    let zst = zstd::encode_all(&sample()[..], 3).unwrap();
    let fx = Fixture::new();
    let mut input = Cursor::new(&zst);
    apply_layer(
        decompress(&mut input, Compression::Zstd).unwrap(),
        &fx.layer,
        &Limits::default(),
    )
    .unwrap();
    check_sample(&fx);
    assert_eq!(
        input.position(),
        zst.len() as u64,
        "compressed input not read to the end"
    );
}

#[test]
fn unpack_corrupt_compression_is_a_read_error() {
    let mut gz = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
    enc.write_all(&sample()).unwrap();
    enc.finish().unwrap();
    let middle = gz.len() / 2;
    gz[middle] ^= 0xff;
    let fx = Fixture::new();
    let err = apply_layer(
        decompress(&gz[..], Compression::Gzip).unwrap(),
        &fx.layer,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::Tar(_)), "{err:?}");
}

#[test]
fn unpack_reads_the_stream_to_its_end() {
    // Record padding (tar writes whole 10 KiB records) and extra zero blocks after the
    // end-of-archive marker are part of the digested blob.
    let mut tar = sample();
    tar.extend_from_slice(&[0u8; 10240]);
    let fx = Fixture::new();
    let mut input = Cursor::new(&tar);
    apply_layer(&mut input, &fx.layer, &Limits::default()).unwrap();
    assert_eq!(input.position(), tar.len() as u64);
    let mut rest = Vec::new();
    input.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    // Also for an archive with no entries at all.
    let empty = vec![0u8; 1024 + 512 * 7];
    let fx = Fixture::new();
    let mut input = Cursor::new(&empty);
    let stats = apply_layer(&mut input, &fx.layer, &Limits::default()).unwrap();
    assert_eq!(stats.entries, 0);
    assert_eq!(input.position(), empty.len() as u64);
}

#[test]
fn unpack_missing_destination_is_reported() {
    let fx = Fixture::new();
    let missing = fx.tmp.path().join("missing");
    let err = apply_layer(&sample()[..], &missing, &Limits::default()).unwrap_err();
    assert!(matches!(err, UnpackError::Dest { .. }), "{err:?}");
}

/// A GNU header number field: octal, or base-256 when it does not fit.
fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    if text.len() == field.len() {
        field.copy_from_slice(text.as_bytes());
    } else {
        field.fill(0);
        field[0] = 0x80;
        let at = field.len() - 8;
        field[at..].copy_from_slice(&value.to_be_bytes());
    }
}

/// A GNU sparse file `name` of `real_size` bytes whose only data is `data` at `offset`
/// (the rest is holes), as GNU tar `--sparse` writes one.
fn sparse_layer(name: &str, real_size: u64, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_uid(nix::unistd::geteuid().as_raw().into());
    header.set_gid(nix::unistd::getegid().as_raw().into());
    header.set_mtime(1_600_000_000);
    header.set_size(data.len() as u64);
    let gnu = header.as_gnu_mut().unwrap();
    octal(&mut gnu.sparse[0].offset, offset);
    octal(&mut gnu.sparse[0].numbytes, data.len() as u64);
    octal(&mut gnu.realsize, real_size);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, data).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn unpack_sparse_files_are_written_out_and_count_their_holes() {
    // A GNU sparse file: its holes are written as zeros (the stream holds 3 bytes of data).
    let tar = sparse_layer("sparse", (1 << 20) + 3, 1 << 20, b"hi\n");
    let fx = Fixture::new();
    let stats = fx.apply(&tar).unwrap();
    let content = fs::read(fx.path("sparse")).unwrap();
    assert_eq!(content.len(), (1 << 20) + 3);
    assert!(content[..1 << 20].iter().all(|b| *b == 0));
    assert_eq!(&content[1 << 20..], b"hi\n");
    assert_eq!(stats.bytes, (1 << 20) + 3);

    // Its real size is what the file limit measures: a terabyte of holes is refused before
    // anything is written.
    let bomb = sparse_layer("bomb", 1 << 40, (1 << 40) - 1, b"x");
    let fx = Fixture::new();
    let err = fx.apply(&bomb).unwrap_err();
    assert!(
        matches!(
            &err,
            UnpackError::Entry {
                problem: crate::unpack::EntryProblem::FileTooLarge { size, .. },
                ..
            } if *size == 1 << 40
        ),
        "{err:?}"
    );
    assert!(!fx.path("bomb").exists());

    // A sparse file whose data the stream does not hold is truncated.
    let fx = Fixture::new();
    let err = fx.apply(&tar[..512 + 2]).unwrap_err();
    assert!(
        matches!(err, UnpackError::Truncated { size, got, .. } if size == (1 << 20) + 3 && got == (1 << 20) + 2),
        "{err:?}"
    );
}
