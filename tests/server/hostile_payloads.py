"""Payloads of the hostile-client cases, shared by probe_server.py (one probe each, with figures) and
soak_server.py (in its traffic mix). Bytes only: no sockets or servers here."""
import uuid
import zlib


def gzip_bomb(inflated_bytes=1 << 30):
    """About 1 MB of gzip that inflates to `inflated_bytes` of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip wrapper
    zeros = b"\0" * (1 << 20)
    parts = [compressor.compress(zeros) for _ in range(inflated_bytes >> 20)]
    return b"".join(parts) + compressor.flush()


def compressed_post(body, path="/predict", coding="gzip"):
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Encoding: {coding}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def declared_body_head(length=60_000_000, path="/predict"):
    """A head that promises `length` bytes of body; the caller sends none, or a trickle."""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def deep_json(depth=1_000_000):
    """A retrain request whose `epochs` is an array nested `depth` deep (2 MB at a million)."""
    return b'{"epochs": ' + b"[" * depth + b"]" * depth + b"}"


# Paths whose decoded bytes are not UTF-8: a lone 0xFF, an overlong '/', a UTF-16 surrogate.
BAD_UTF8_PATHS = ["/%FF", "/models/%C0%AF/activate", "/retrain_status/%ED%A0%80"]


def multipart(fields):
    """(name, filename or None, bytes) fields -> (body, content type). File names may be bytes (any bytes)."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + (filename if isinstance(filename, bytes) else filename.encode()) + b'"'
        body += f"--{boundary}\r\nContent-Disposition: ".encode() + disposition + b"\r\n\r\n" + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def bad_filename_upload(scan, label="glioma"):
    """An upload of a real scan under a file name that is not UTF-8."""
    return multipart([("files", b"scan-\xff\xfe.jpg", scan), ("label", None, label.encode())])
