"""Paths, URIs and atomic commits on any Hadoop filesystem.

Outputs are written under a hidden temporary sibling and renamed into place only once complete, so a
reader never sees a half-written dataset and rerunning the same run date replaces the output whole.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse


def short_digest(payload) -> str:
    """12 hex digits of SHA-256 over ``payload`` as canonical JSON: names store locations and studies after
    the configuration that defines them."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def to_uri(path: str | Path) -> str:
    """An absolute URI: local paths become ``file:///abs/path`` so executors resolve them identically."""
    text = str(path)
    if urlparse(text).scheme and not (len(text) > 1 and text[1] == ":"):
        return text
    # Not Path.as_uri(): it percent-encodes '=' (run_date=...), which Hadoop would keep literally.
    return "file://" + str(Path(text).expanduser().resolve())


def is_local_uri(uri: str) -> bool:
    return urlparse(to_uri(uri)).scheme == "file"


def local_path(uri: str) -> Path:
    """The filesystem path of a ``file:`` URI."""
    parsed = urlparse(to_uri(uri))
    if parsed.scheme != "file":
        raise ValueError(f"{uri} is not on the local filesystem")
    return Path(parsed.path)


def join(uri: str, *parts: str) -> str:
    return "/".join([to_uri(uri).rstrip("/"), *(str(p).strip("/") for p in parts)])


class HadoopFS:
    """The few Hadoop FileSystem operations the pipelines need, through the session's JVM."""

    def __init__(self, spark) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(to_uri(uri))

    def _fs(self, uri: str):
        return self._path(uri).getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        return bool(self._fs(uri).exists(self._path(uri)))

    def delete(self, uri: str) -> None:
        if self.exists(uri):
            self._fs(uri).delete(self._path(uri), True)

    def mkdirs(self, uri: str) -> None:
        self._fs(uri).mkdirs(self._path(uri))

    def rename(self, source: str, target: str) -> None:
        if not self._fs(source).rename(self._path(source), self._path(target)):
            raise OSError(f"could not rename {source} to {target}")

    def copy_from_local(self, local_file: str, uri: str) -> None:
        self._fs(uri).copyFromLocalFile(False, True, self._jvm.org.apache.hadoop.fs.Path(to_uri(local_file)),
                                        self._path(uri))

    def write_text(self, uri: str, text: str) -> None:
        stream = self._fs(uri).create(self._path(uri), True)
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()

    def read_text(self, uri: str) -> str:
        stream = self._fs(uri).open(self._path(uri))
        reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            reader.close()

    def first_line(self, uri: str) -> str | None:
        """The first line of a text file, decompressed by its codec (``.gz``, ``.bz2`` ...); None when empty."""
        lines = self.first_lines(uri, 1)
        return lines[0] if lines else None

    def first_lines(self, uri: str, count: int) -> list[str]:
        """Up to ``count`` first lines of a text file, decompressed by its codec, read without a Spark job."""
        path = self._path(uri)
        stream = self._fs(uri).open(path)
        codec = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(self._conf).getCodec(path)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = self._jvm.java.io.BufferedReader(self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        try:
            while len(lines) < count and (line := reader.readLine()) is not None:
                lines.append(line)
        finally:
            reader.close()
        return lines

    def encoded_name(self, uri: str) -> str:
        """A file's name as Spark's rows carry it (``input_file_name()``, ``_metadata.file_name``): URL-encoded."""
        return str(self._path(uri).toUri().getRawPath()).rsplit("/", 1)[-1]

    def list_files(self, uri: str) -> list[tuple[str, int, int]]:
        """(uri, size, mtime) of every data file below ``uri`` (glob patterns allowed), sorted."""
        fs = self._fs(uri)
        statuses = fs.globStatus(self._path(uri)) or []
        found = []
        for status in statuses:
            if status.isDirectory():
                iterator = fs.listFiles(status.getPath(), True)
                while iterator.hasNext():
                    found.append(iterator.next())
            else:
                found.append(status)
        files = []
        for status in found:
            name = status.getPath().getName()
            if name.startswith(("_", ".")):
                continue
            files.append((status.getPath().toString(), int(status.getLen()), int(status.getModificationTime())))
        return sorted(files)


@contextlib.contextmanager
def atomic_output(spark, target: str) -> Iterator[str]:
    """Yield a temporary URI to write into; on success it replaces ``target`` in one rename.

    The previous output (a rerun of the same date) is moved aside first and deleted only after the
    new one is in place; on failure the temporary output is removed and the old one is untouched.
    """
    fs = HadoopFS(spark)
    target = to_uri(target).rstrip("/")
    parent, name = target.rsplit("/", 1)
    fs.mkdirs(parent)
    token = uuid.uuid4().hex[:12]
    temporary = f"{parent}/.{name}.tmp-{token}"
    try:
        yield temporary
    except BaseException:
        fs.delete(temporary)
        raise
    previous = f"{parent}/.{name}.old-{token}"
    had_previous = fs.exists(target)
    if had_previous:
        fs.rename(target, previous)
    try:
        fs.rename(temporary, target)
    except BaseException:
        if had_previous:
            fs.rename(previous, target)
        fs.delete(temporary)
        raise
    if had_previous:
        fs.delete(previous)
