"""Current ClickHouse over HTTP, for tests: chdb (an in-process ClickHouse 26.x, PyPI
`chdb-core`) behind the part of ClickHouse's HTTP interface the `clickhouse` crate uses.

    python server.py PORT

- `POST /?database=DB&default_format=FMT` with the statement as the body: the statement runs
  in database DB (when given) and its result comes back in FMT (an explicit `FORMAT` in the
  statement wins; TabSeparated when neither is given).
- `POST /?query=INSERT INTO t(a, b) FORMAT RowBinary` with the rows as the body: the rows are
  inserted (`FROM INFILE` of a temporary file holding the body).
- `GET /ping` answers `Ok.`.
- A failed statement answers 500 with ClickHouse's own message (`Code: N. DB::Exception: ...`)
  and `X-ClickHouse-Exception-Code`, as a server does.

Request bodies may be compressed as the crate's `Compression::Lz4` sends them
(`decompress=1`: ClickHouse's block framing around LZ4 blocks); responses are never
compressed (the client reads a response without `Content-Encoding` as it is). One session
serves every request, one statement at a time.
"""

import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import lz4.block
from chdb import session

SESSION = session.Session()
LOCK = threading.Lock()
INSERT_WITH_ROWS = re.compile(r"^\s*INSERT\s+INTO\s+.+\bFORMAT\s+(\w+)\s*$", re.IGNORECASE | re.DOTALL)
EXCEPTION_CODE = re.compile(r"Code: (\d+)")


def decompress(body):
    """ClickHouse's compressed blocks: a 16-byte checksum, a method byte, the block's size
    with its 9-byte header and the data's size (little-endian u32 each), then the block."""
    out, at = bytearray(), 0
    while at < len(body):
        method = body[at + 16]
        size = int.from_bytes(body[at + 17 : at + 21], "little")
        plain = int.from_bytes(body[at + 21 : at + 25], "little")
        block = body[at + 25 : at + 16 + size]
        if method == 0x82:
            out += lz4.block.decompress(block, uncompressed_size=plain)
        elif method == 0x02:
            out += block
        else:
            raise ValueError(f"Code: 1. DB::Exception: compression method {method:#x} is not supported here")
        at += 16 + size
    return bytes(out)


def run(statement, database, output_format, rows=None):
    """Run one statement; `rows` is the data of an INSERT ... FORMAT."""
    with LOCK:
        if database:
            SESSION.query(f"USE {database}")
        if rows is None:
            return SESSION.query(statement, output_format).bytes()
        with tempfile.NamedTemporaryFile(suffix=".bin") as data:
            data.write(rows)
            data.flush()
            head, tail = re.split(r"\bFORMAT\b", statement, maxsplit=1, flags=re.IGNORECASE)
            SESSION.query(f"{head} FROM INFILE '{data.name}' FORMAT {tail.strip()}")
            return b""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/ping":
            return self.answer(200, b"Ok.\n")
        return self.handle_statement(url, b"")

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else self.read_chunked()
        return self.handle_statement(url, body)

    def read_chunked(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return b""
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    def handle_statement(self, url, body):
        params = {name: values[-1] for name, values in parse_qs(url.query).items()}
        if self.headers.get("Content-Encoding"):
            return self.answer(400, b"Code: 1. DB::Exception: HTTP body encodings are not supported here\n")
        database = params.get("database")
        output_format = params.get("default_format", "TabSeparated")
        query = params.get("query")
        try:
            if params.get("decompress") == "1":
                body = decompress(body)
            if query is not None and INSERT_WITH_ROWS.match(query):
                result = run(query, database, output_format, rows=body)
            else:
                statement = (query or "") + ("\n" if query else "") + body.decode()
                result = run(statement, database, output_format)
        except Exception as error:  # chdb raises its own error type with ClickHouse's message
            message = str(error)
            code = EXCEPTION_CODE.search(message)
            headers = [("X-ClickHouse-Exception-Code", code.group(1))] if code else []
            return self.answer(500, message.encode() + b"\n", headers)
        return self.answer(200, result)


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    version = SESSION.query("SELECT version()", "TabSeparated").bytes().decode().strip()
    print(f"chdb {version} on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    main()
