#!/usr/bin/env python3
"""Writes the hostile-layer corpus next to this script, deterministically.

    tests/corpus/layers/generate.py

Every file named in cases.toml is written here (fixed names, owners, times and gzip
headers, so the same Python and zlib give the same bytes; the zstd case needs the `zstd`
command). cases.toml itself is written by hand: it says what each file is and what
unpacking it must do. `cargo test -p berth-image corpus` checks every case.

The layers are unpacked into `<tmp>/layer` next to a sentinel `<tmp>/outside/secret`, so
`../outside` is how a layer reaches outside its directory.
"""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
MTIME = 1_700_000_000
MIB = 1 << 20


def info(name, kind=tarfile.REGTYPE, mode=0o644, size=0, link="", devmajor=0, devminor=0):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = mode
    t.size = size
    t.linkname = link
    t.mtime = MTIME
    t.uid = t.gid = 0
    t.uname = t.gname = "root"
    t.devmajor, t.devminor = devmajor, devminor
    return t


class Layer:
    """A tar written entry by entry, names as given (no normalisation)."""

    def __init__(self, fmt=tarfile.GNU_FORMAT):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def file(self, name, data=b"", mode=0o644):
        self.tar.addfile(info(name, mode=mode, size=len(data)), io.BytesIO(data))
        return self

    def zeros(self, name, size):
        self.tar.addfile(info(name, size=size), Zeros(size))
        return self

    def dir(self, name, mode=0o755):
        self.tar.addfile(info(name, tarfile.DIRTYPE, mode))
        return self

    def symlink(self, name, target):
        self.tar.addfile(info(name, tarfile.SYMTYPE, 0o777, link=target))
        return self

    def hardlink(self, name, target):
        self.tar.addfile(info(name, tarfile.LNKTYPE, 0o644, link=target))
        return self

    def node(self, name, kind, mode, major=0, minor=0):
        self.tar.addfile(info(name, kind, mode, devmajor=major, devminor=minor))
        return self

    def pax_file(self, name, pax, data=b""):
        t = info(name, size=len(data))
        t.pax_headers = pax
        self.tar.addfile(t, io.BytesIO(data))
        return self

    def raw(self, header, data=b""):
        """A hand-made 512-byte header (checksum set here) and its data, padded."""
        self.tar.fileobj.write(with_checksum(header))
        self.tar.fileobj.write(data + b"\0" * (-len(data) % 512))
        self.tar.offset += 512 + len(data) + (-len(data) % 512)
        return self

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


class Zeros(io.RawIOBase):
    """`size` zero bytes, without holding them."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def with_checksum(header):
    header = bytearray(header)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def number(value, width):
    """A tar number field: octal, or GNU base-256 when it does not fit."""
    text = b"%0*o\0" % (width - 1, value)
    if len(text) == width:
        return text
    return b"\x80" + value.to_bytes(width - 1, "big")


def header_of(t, fmt=tarfile.GNU_FORMAT):
    return bytearray(t.tobuf(fmt, "utf-8", "surrogateescape")[:512])


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(data)
    return out.getvalue()


def gz_stream(chunks):
    """gzip of the concatenated `chunks` (an iterable), without holding the whole."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        for chunk in chunks:
            f.write(chunk)
    return out.getvalue()


def zeros(size, chunk=MIB):
    while size > 0:
        n = min(chunk, size)
        yield bytes(n)
        size -= n


def tar_header_bytes(name, size):
    return header_of(info(name, size=size))


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def sample(size):
    """Deterministic incompressible-ish bytes."""
    out = bytearray()
    seed = b"berth corpus"
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


def main():
    # A well-formed layer: the harness's control case.
    benign = (
        Layer()
        .dir("etc/")
        .file("etc/os-release", b"ID=berth\n")
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hardlink("etc/os-release.link", "etc/os-release")
        .bytes()
    )
    write("benign.tar.gz", gz(benign))

    # Names.
    write("dotdot-file.tar", Layer().file("../outside/secret", b"pwned\n").bytes())
    write(
        "dotdot-nested.tar",
        Layer().dir("a/").file("a/../../outside/secret", b"pwned\n").bytes(),
    )
    write(
        "dotdot-pax-name.tar",
        Layer(tarfile.PAX_FORMAT)
        .file("d/" * 60 + "../" * 61 + "outside/secret", b"pwned\n")
        .bytes(),
    )
    write(
        "pax-nul-name.tar",
        Layer(tarfile.PAX_FORMAT).pax_file("harmless", {"path": "a\0b"}, b"x").bytes(),
    )
    write(
        "absolute-names.tar",
        Layer()
        .dir("/berth-corpus-absolute/")
        .file("/berth-corpus-absolute/file", b"contained\n")
        .symlink("/berth-corpus-absolute/link", "/etc/passwd")
        .bytes(),
    )
    write("file-as-parent.tar", Layer().file("f", b"x").file("f/g", b"y").bytes())

    # Symlinks.
    write(
        "symlink-parent-relative.tar",
        Layer().symlink("link", "../outside").file("link/secret", b"pwned\n").bytes(),
    )
    write(
        "symlink-parent-absolute.tar",
        Layer().symlink("link", "/").file("link/berth-corpus-escape", b"pwned\n").bytes(),
    )
    write(
        "symlink-chain.tar",
        Layer()
        .symlink("a", "b")
        .symlink("b", "../outside")
        .file("a/secret", b"pwned\n")
        .bytes(),
    )
    write(
        "symlink-replaces-dir.tar",
        Layer()
        .dir("d/")
        .symlink("d", "../outside")
        .file("d/secret", b"pwned\n")
        .bytes(),
    )
    write(
        "symlink-then-file.tar",
        Layer().symlink("f", "../outside/secret").file("f", b"replaced\n").bytes(),
    )
    write(
        "symlink-then-dir.tar",
        Layer()
        .symlink("d", "../outside")
        .dir("d/")
        .file("d/inside", b"inside\n")
        .bytes(),
    )

    # Hard links.
    write("hardlink-dotdot.tar", Layer().hardlink("hl", "../outside/secret").bytes())
    write("hardlink-absolute.tar", Layer().hardlink("hl", "/etc/passwd").bytes())
    write(
        "hardlink-through-symlink.tar",
        Layer().symlink("link", "../outside").hardlink("hl", "link/secret").bytes(),
    )
    write("hardlink-to-dir.tar", Layer().dir("d/").hardlink("hl", "d").bytes())

    # Whiteouts.
    keep = lambda: Layer().dir("dir/").file("dir/keep", b"keep\n")  # noqa: E731
    write("whiteout-dotdot.tar", keep().file(".wh..").bytes())
    write("whiteout-dotdotdot.tar", keep().file(".wh...").bytes())
    write("whiteout-empty.tar", keep().file("dir/.wh.").bytes())
    write("whiteout-parent-dotdot.tar", Layer().file("../.wh.outside").bytes())
    write(
        "whiteout-through-symlink.tar",
        Layer().symlink("link", "../outside").file("link/.wh.secret").bytes(),
    )
    write(
        "opaque-through-symlink.tar",
        Layer().symlink("link", "../outside").file("link/.wh..wh..opq").bytes(),
    )
    write(
        "opaque-games.tar",
        Layer()
        .file(".wh..wh..opq")
        .dir("kept/")
        .file("kept/.wh..wh..opq")
        .file("kept/.wh..wh..opq")
        .file("kept/new", b"new\n")
        .file("made/.wh..wh..opq")
        .file("made/.wh..wh.plnk")
        .dir("gone/")
        .file("gone/.wh..wh..opq")
        .file(".wh.gone")
        .bytes(),
    )
    write(
        "whiteout-replaces.tar",
        Layer()
        .file("f", b"file\n")
        .file(".wh.f")
        .dir("d/")
        .file("d/child", b"child\n")
        .file(".wh.d")
        .symlink("s", "../outside")
        .file(".wh.s")
        .file("/.wh.abs")
        .bytes(),
    )

    # Device nodes, FIFOs, setuid/setgid/sticky: created as docker creates them.
    write(
        "devices-and-setuid.tar",
        Layer()
        .dir("dev/")
        .node("dev/null", tarfile.CHRTYPE, 0o666, 1, 3)
        .node("dev/loop0", tarfile.BLKTYPE, 0o660, 7, 0)
        .node("dev/fifo", tarfile.FIFOTYPE, 0o644)
        .dir("bin/")
        .file("bin/su", b"#!/bin/sh\n", 0o4755)
        .file("bin/sg", b"#!/bin/sh\n", 0o2755)
        .dir("tmp/", 0o1777)
        .bytes(),
    )

    # Decompression bombs and size limits (cases.toml unpacks under 8 MiB per layer,
    # 4 MiB per file, 1000 entries).
    bomb = tar_header_bytes("zeros", 64 * MIB)
    write("gzip-bomb-file.tar.gz", gz_stream([bomb, *zeros(64 * MIB), bytes(1024)]))
    small = Layer().file("a", b"a\n").bytes()
    write("gzip-bomb-trailer.tar.gz", gz_stream([small, *zeros(64 * MIB)]))
    many = Layer()
    for i in range(8):
        many.zeros("f%d" % i, MIB)
    write("gzip-bomb-many-files.tar.gz", gz(many.bytes()))
    zst = subprocess.run(
        ["zstd", "-19", "-q", "-c", "--no-check"],
        input=b"".join([bytes(tar_header_bytes("zeros", 64 * MIB)), bytes(64 * MIB), bytes(1024)]),
        check=True,
        capture_output=True,
    ).stdout
    write("zstd-bomb-file.tar.zst", zst)
    entries = Layer()
    for i in range(1001):
        entries.file("e%04d" % i)
    write("too-many-entries.tar.gz", gz(entries.bytes()))
    write(
        "pax-header-bomb.tar.gz",
        gz(Layer(tarfile.PAX_FORMAT).pax_file("f", {"comment": "x" * (3 * MIB)}).bytes()),
    )
    write("gnu-longname-bomb.tar.gz", gz(Layer().file("a" * (3 * MIB)).bytes()))
    # GNU sparse file of 1 TiB, one byte of data at its end.
    sparse = header_of(info("sparse", tarfile.GNUTYPE_SPARSE, size=1))
    sparse[386:398] = number((1 << 40) - 1, 12)  # sparse[0].offset
    sparse[398:410] = number(1, 12)  # sparse[0].numbytes
    sparse[483:495] = number(1 << 40, 12)  # realsize
    write("sparse-bomb.tar", Layer().raw(sparse, b"x").bytes())

    # Malformed archives.
    content = sample(16_000)
    whole = gz(Layer().file("data", content).bytes())
    write("gzip-truncated.tar.gz", whole[: len(whole) // 2])
    write("tar-cut-in-entry.tar", Layer().file("f", b"x" * 4096).bytes()[:1024])
    bad = bytearray(Layer().file("f", b"content\n").bytes())
    bad[148] ^= 1
    write("tar-bad-checksum.tar", bytes(bad))
    volume = header_of(info("volume"))
    volume[156:157] = b"V"
    write("volume-header.tar", Layer().raw(volume).bytes())
    owner = header_of(info("f"))
    owner[108:116] = b"\x80\0\0\x01\0\0\0\0"  # uid 2^32, base-256
    write("owner-out-of-range.tar", Layer().raw(owner).bytes())

    # The pull path (cases of kind "blob" in cases.toml) uses benign.tar.gz and
    # gzip-truncated.tar.gz; the latter's manifest digest is that of the whole blob.
    print("blob-truncated-download: digest sha256:%s, diff_id sha256:%s" % (
        hashlib.sha256(whole).hexdigest(),
        hashlib.sha256(gzip.decompress(whole)).hexdigest(),
    ))

    # A manifest over the 8 MiB document limit (JSON padded with spaces).
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"'
    manifest += b" " * (8 * MIB + 1 - len(manifest) - 1) + b"}"
    write("manifest-oversized.json.gz", gz(manifest))


if __name__ == "__main__":
    main()
