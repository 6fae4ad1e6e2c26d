"""The default reference corpus: Universal Dependencies English EWT r2.15, dev and test files.

The files come from a directory the user gives, or from a cache directory, into which missing files
are downloaded once from the treebank's GitHub release tag and checked against hard-coded SHA-256
sums. A download goes to a temporary file in the cache directory and is renamed into place only
once its checksum matches, so no partial or wrong file is ever left under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..cache import CACHE_ENV, cache_root
from ..errors import CorpusError
from ..files import atomic_file
from .sentence import files_checksum

EWT_RELEASE = "r2.15"
EWT_NAME = "ud_english_ewt"
EWT_ATTRIBUTION = "Universal Dependencies English Web Treebank v2.15 (CC BY-SA 4.0)"
EWT_BASE_URL = f"https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/{EWT_RELEASE}/"
# File name -> SHA-256 of the r2.15 release's bytes, in the order the corpus reads them.
EWT_FILES = {
    "en_ewt-ud-dev.conllu": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    "en_ewt-ud-test.conllu": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
}
DIR_ENV = "ATTNSCOPE_EWT_DIR"  # a directory that holds the EWT files; when set, nothing is cached or downloaded
URL_ENV = "ATTNSCOPE_EWT_URL"  # overrides EWT_BASE_URL (a mirror, or a local server in tests)
DOWNLOAD_TIMEOUT = 30.0


def default_cache_dir() -> Path:
    """Where the EWT files are cached: ``ud_english_ewt-r2.15`` under `cache_root`."""
    return cache_root() / f"{EWT_NAME}-{EWT_RELEASE}"


def is_ewt_directory(directory: Path) -> bool:
    """Whether ``directory`` holds both EWT files (dev and test)."""
    return all((directory / name).is_file() for name in EWT_FILES)


def ewt_files(
    directory: Path | str | None = None,
    cache_dir: Path | None = None,
    *,
    base_url: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> list[Path]:
    """Paths of the EWT dev and test files, in that order.

    With ``directory`` (default: ``$ATTNSCOPE_EWT_DIR`` when set), the files must be there (their content is not
    checked: any EWT release the
    user has works). Otherwise they are taken from ``cache_dir`` (default: `default_cache_dir`), and
    those missing or not matching the r2.15 checksums are downloaded from ``base_url`` (default:
    ``$ATTNSCOPE_EWT_URL`` or `EWT_BASE_URL`).
    """
    if directory is None and os.environ.get(DIR_ENV):
        directory = os.environ[DIR_ENV]
    if directory is not None:
        directory = Path(directory)
        missing = [name for name in EWT_FILES if not (directory / name).is_file()]
        if missing:
            raise CorpusError(
                f"{directory} does not hold {' and '.join(missing)}; expected a directory with the UD English "
                f"EWT files {' and '.join(EWT_FILES)}"
            )
        return [directory / name for name in EWT_FILES]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    base = base_url or os.environ.get(URL_ENV) or EWT_BASE_URL
    paths = []
    for name, checksum in EWT_FILES.items():
        path = cache / name
        if not (path.is_file() and files_checksum([path]) == checksum):
            download(base.rstrip("/") + "/" + name, path, checksum, timeout=timeout)
        paths.append(path)
    return paths


def download(url: str, target: Path, sha256: str, *, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Fetch ``url`` into ``target`` if its bytes have SHA-256 ``sha256``; otherwise leave no file behind.

    The bytes go to a temporary file beside ``target`` that is renamed onto it only after the
    checksum matched. Raises `CorpusError` for a failed download or a checksum mismatch.
    """
    advice = (
        f"pass a local directory that holds {' and '.join(EWT_FILES)} instead "
        f"(--corpus DIR), or download them yourself from {EWT_BASE_URL}"
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CorpusError(
            f"cannot create the cache directory {target.parent}: {error.strerror or error}; "
            f"set {CACHE_ENV} to a writable directory, or {advice}"
        ) from None
    digest = hashlib.sha256()
    with atomic_file(target, "wb") as out:  # replaces target only if the block ends without an error
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error  # ValueError: a malformed URL
            if isinstance(error, urllib.error.HTTPError):
                reason = f"HTTP {error.code} {error.reason}"
            raise CorpusError(f"could not download {url} ({reason}); {advice}") from None
        if digest.hexdigest() != sha256:
            raise CorpusError(
                f"the download of {url} has SHA-256 {digest.hexdigest()}; expected {sha256} "
                f"(a corrupted download or a changed file): {advice}"
            )
    return target
