#!/usr/bin/env python3
"""Prints the share of drawn pixels that differ between two PNGs of the same size.

A pixel is drawn when it is not white in either image; it differs when any channel differs.
Uses only the standard library (zlib): rsvg-convert writes 8-bit RGBA, non-interlaced PNGs.
"""
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, width = 8, [], 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace != 0 or ctype not in (0, 2, 4, 6):
                raise SystemExit(f"{path}: unsupported PNG (depth {depth}, type {ctype})")
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    w1, h1, b1, r1 = read_png(sys.argv[1])
    w2, h2, b2, r2 = read_png(sys.argv[2])
    if (w1, h1, b1) != (w2, h2, b2):
        raise SystemExit("images differ in size or format")
    white = bytes([255] * b1) if b1 in (1, 3) else None
    drawn = differ = 0
    for y in range(h1):
        a, b = r1[y], r2[y]
        if a == b and a.count(255) == len(a):
            continue
        for x in range(0, w1 * b1, b1):
            pa, pb = a[x:x + b1], b[x:x + b1]
            wa = pa == white if white else (pa[-1] == 0 or pa[:-1] == b"\xff" * (b1 - 1))
            wb = pb == white if white else (pb[-1] == 0 or pb[:-1] == b"\xff" * (b1 - 1))
            if wa and wb:
                continue
            drawn += 1
            if pa != pb:
                differ += 1
    print(f"{differ / drawn if drawn else 0.0:.6f} {differ} {drawn}")


if __name__ == "__main__":
    main()
