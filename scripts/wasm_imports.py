#!/usr/bin/env python3
"""Lists the imports of a .wasm module; exits 1 if any comes from the module "env".

An `env` import means some dependency expects a C runtime or an OS (getrandom without a
backend, a C library): the module would not instantiate in a browser. Usage:
    wasm_imports.py MODULE.wasm
"""
import sys


def leb128(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def name(data, pos):
    n, pos = leb128(data, pos)
    return data[pos:pos + n].decode(), pos + n


def imports(data):
    if data[:4] != b"\0asm":
        raise SystemExit("not a wasm module")
    pos = 8
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, pos = leb128(data, pos)
        end = pos + size
        if section == 2:
            count, p = leb128(data, pos)
            for _ in range(count):
                module, p = name(data, p)
                field, p = name(data, p)
                kind, p = data[p], p + 1
                if kind == 0:
                    _, p = leb128(data, p)
                elif kind == 1:
                    p += 1
                    flags, p = leb128(data, p)
                    _, p = leb128(data, p)
                    if flags & 1:
                        _, p = leb128(data, p)
                elif kind == 2:
                    flags, p = leb128(data, p)
                    _, p = leb128(data, p)
                    if flags & 1:
                        _, p = leb128(data, p)
                elif kind == 3:
                    p += 2
                else:
                    _, p = leb128(data, p)
                yield module, field
        pos = end


def main():
    data = open(sys.argv[1], "rb").read()
    found = list(imports(data))
    for module, field in found:
        print(f"import {module}::{field}")
    bad = [f"{m}::{f}" for m, f in found if m == "env"]
    print(f"{len(found)} imports, {len(bad)} from env")
    if bad:
        print("FAIL: the module imports from env: " + ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
