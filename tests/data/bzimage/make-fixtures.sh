#!/bin/sh
# Regenerates the XZ fixtures of hv's bzImage host tests
# (hv/logic/bzimage/tests.rs). See README.md.
set -eu
cd "$(dirname "$0")"

# The test pattern: 64 KiB, byte i = 0xe8 (an x86 `call`, which the BCJ
# filter rewrites) when i % 32 == 5, else (i / 7) % 251. The tests
# compute the same bytes.
python3 - <<'PY'
data = bytes(0xE8 if i % 32 == 5 else (i // 7) % 251 for i in range(65536))
open("pattern.bin", "wb").write(data)
PY

# Appends the unpacked length, little-endian, as Linux does after every
# compressed kernel payload.
append_size() {
    python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", 65536))' >>"$1"
}

# As Linux's scripts/xz_wrap.sh packs an x86 kernel.
xz --format=xz --check=crc32 --x86 --lzma2=,dict=32MiB -c pattern.bin >pattern-linux.xz
append_size pattern-linux.xz
# A small dictionary, and a check type Xen's unxz does not know.
xz --format=xz --check=crc32 --lzma2=preset=0,dict=64KiB -c pattern.bin >pattern-dict64k.xz
append_size pattern-dict64k.xz
xz --format=xz --check=crc64 --lzma2=preset=0,dict=64KiB -c pattern.bin >pattern-crc64.xz
append_size pattern-crc64.xz
rm pattern.bin
ls -l ./*.xz
