#!/usr/bin/env python3
"""Seeds the fuzz corpora from the test tables.

Reads the Rust string and byte-string literals of the HTTP/1 parser and chunked decoder unit tests
(src/protocol/h1/{parse,chunk,framing}.rs) and the integration tables (tests/proxy_smuggling.rs,
tests/proxy_http1.rs), and writes each request head, response head and chunked body into
fuzz/corpus/<target>/seed-<hash>, prefixed with the selector byte(s) the target reads first:

  h1_request, h1_to_h2   request heads; selector 0x00 (default limits) and 0xEA (small limits)
  h1_response            response heads; selector 0x00 and 0xEA
  chunked                chunked bodies; mode byte 0x00 (decode raw bytes)

The smuggling table builds most heads with `req("...")`, `post("...", &body)` and `format!` over
constants; this script expands exactly those shapes (a `format!("...")` whose `{name}` placeholders
are literals, `const` strings or earlier such `let`s; a call of a one-line `fn` whose body is such a
`format!`), so the seeds are the table's own bytes. A literal it cannot expand is skipped and
counted. Existing seed-* files are replaced; other corpus files are left alone.

  fuzz/seed.py [corpus-dir]        (default: fuzz/corpus)
"""
import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = [
    "src/protocol/h1/parse.rs",
    "src/protocol/h1/chunk.rs",
    "src/protocol/h1/framing.rs",
    "tests/proxy_smuggling.rs",
    "tests/proxy_http1.rs",
]
# A literal: optional b, then "..." with Rust escapes (no raw strings in these files).
LIT = r'b?"(?:[^"\\]|\\.|\\\n)*"'
METHOD = re.compile(rb"^[A-Za-z!#$%&'*+.^_`|~0-9-]+ \S+ HTTP/\d\.\d(\r?\n|$)")
STATUS = re.compile(rb"^HTTP/\d\.\d \d{3}")
CHUNK = re.compile(rb"^[0-9a-fA-F]+(;[^\r\n]*)?\r\n")


def unescape(lit: str) -> bytes:
    """Decodes a Rust (byte) string literal."""
    body = lit[2:-1] if lit.startswith("b") else lit[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e == "\n":  # line continuation: skip the newline and the next line's indentation
            i += 2
            while i < len(body) and body[i] in " \t":
                i += 1
            continue
        simple = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
        if e in simple:
            out += simple[e]
            i += 2
        elif e == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif e == "u":
            end = body.index("}", i)
            out += chr(int(body[i + 3 : end], 16)).encode()
            i = end + 1
        else:
            raise ValueError(f"escape \\{e}")
    return bytes(out)


def fill(template: bytes, names: dict) -> bytes | None:
    """`format!` with `{name}` placeholders from `names`; None when one is unknown."""
    parts = re.split(rb"\{([A-Za-z_][A-Za-z0-9_]*)\}", template)
    out = bytearray()
    for i, p in enumerate(parts):
        if i % 2 == 0:
            out += p.replace(b"{{", b"{").replace(b"}}", b"}")
        elif p.decode() in names:
            out += names[p.decode()]
        else:
            return None
    return bytes(out)


def expand(text: str):
    """Yields (bytes) for every literal, with `format!` and one-line helper calls expanded."""
    names: dict[str, bytes] = {}
    for m in re.finditer(rf"const (\w+): &str = ({LIT});", text):
        names[m.group(1)] = unescape(m.group(2))
    for m in re.finditer(rf"let (\w+) = format!\(({LIT})\);", text):
        v = fill(unescape(m.group(2)), names)
        if v is not None:
            names[m.group(1)] = v
    helpers = {}
    for m in re.finditer(rf"fn (\w+)\(([^)]*)\) -> Vec<u8> \{{\s*format!\(({LIT})\)\.into_bytes\(\)\s*\}}", text):
        params = [p.split(":")[0].strip() for p in m.group(2).split(",") if p.strip()]
        helpers[m.group(1)] = (params, unescape(m.group(3)))
    skipped = 0
    for name, (params, template) in helpers.items():
        arg = rf"(?:{LIT}|&\w+)"
        call = rf"\b{name}\(\s*({arg})" + "".join(rf"\s*,\s*({arg})" for _ in params[1:]) + r"\s*\)"
        for m in re.finditer(call, text):
            env = dict(names)
            for p, a in zip(params, m.groups()):
                env[p] = names.get(a[1:], None) if a.startswith("&") else unescape(a)
            if any(v is None for v in env.values()):
                skipped += 1
                continue
            v = fill(template, env)
            if v is None:
                skipped += 1
            else:
                yield v
    for m in re.finditer(rf"format!\(\s*({LIT})\s*\)", text):
        v = fill(unescape(m.group(1)), names)
        if v is not None:
            yield v
    for m in re.finditer(LIT, text):
        v = unescape(m.group(0))
        if b"{" in v and re.search(rb"\{\w*\}", v):
            continue  # a format! template, expanded above when possible
        yield v
    yield from names.values()
    expand.skipped += skipped


expand.skipped = 0


def h2_frames_seeds() -> set[bytes]:
    """Frame sequences a client sends after the preface and SETTINGS: requests with and without
    bodies and trailers, flow control, pings, resets, priorities (h2_frames starts from these)."""

    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload

    def literal(name: bytes, value: bytes) -> bytes:
        # Literal without indexing, literal name (RFC 7541 §6.2.2), lengths below 127.
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    def block(method: bytes, extra: bytes = b"") -> bytes:
        # :method GET is static index 2; the others spelled out, one with incremental indexing.
        m = b"\x82" if method == b"GET" else literal(b":method", method)
        return m + b"\x86" + b"\x84" + b"\x41\x09a.example" + extra

    get = frame(1, 0x5, 1, block(b"GET"))
    post = frame(1, 0x4, 3, block(b"POST", literal(b"content-length", b"4"))) + frame(0, 0x1, 3, b"body")
    trailers = (
        frame(1, 0x4, 5, block(b"POST"))
        + frame(0, 0x0, 5, b"abc")
        + frame(1, 0x5, 5, literal(b"x-t", b"1"))
    )
    split = frame(1, 0x1, 7, block(b"GET")[:3]) + frame(9, 0x4, 7, block(b"GET")[3:])
    control = (
        frame(8, 0, 0, (1 << 20).to_bytes(4, "big"))
        + frame(6, 0, 0, b"12345678")
        + frame(2, 0, 9, (1).to_bytes(4, "big") + b"\x10")
        + frame(4, 0, 0, b"\x00\x04\x00\x00\x10\x00")
    )
    reset = frame(1, 0x4, 11, block(b"GET")) + frame(3, 0, 11, (8).to_bytes(4, "big"))
    return {get, post, trailers, split, control, reset, get + post + trailers + control + reset}


def main() -> None:
    corpus = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"
    seeds: dict[str, set[bytes]] = {t: set() for t in ("h1_request", "h1_to_h2", "h1_response", "chunked")}
    for rel in SOURCES:
        for v in expand((ROOT / rel).read_text()):
            body = v.lstrip(b"\r\n")
            if METHOD.match(body):
                for sel in (b"\x00", b"\xea"):
                    seeds["h1_request"].add(sel + v)
                    seeds["h1_to_h2"].add(sel + v)
            elif STATUS.match(body):
                for sel in (b"\x00", b"\xea"):
                    seeds["h1_response"].add(sel + v)
            elif CHUNK.match(v) and rel.endswith(("chunk.rs", "proxy_smuggling.rs", "proxy_http1.rs")):
                seeds["chunked"].add(b"\x00" + v)
    seeds["h2_frames"] = h2_frames_seeds()
    for target, items in seeds.items():
        d = corpus / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for v in items:
            (d / f"seed-{hashlib.sha1(v).hexdigest()[:16]}").write_bytes(v)
        print(f"{target}: {len(items)} seeds in {d}")
    if expand.skipped:
        print(f"({expand.skipped} helper calls with arguments that are not literals or known names were skipped)")


if __name__ == "__main__":
    main()
