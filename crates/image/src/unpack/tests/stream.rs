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
