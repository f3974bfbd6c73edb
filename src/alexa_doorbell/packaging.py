"""Build the Lambda zip: only the modules on the skill and notifier path.

The Lambda runtime provides boto3/botocore/urllib3; everything else the
handlers import comes from this package and the standard library. The zip is
reproducible (fixed timestamps and permissions, sorted entries): building twice
from the same source gives the same bytes, so ``sam deploy`` only uploads a new
version when the code changed.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import alexa_doorbell

PACKAGE_ROOT = Path(alexa_doorbell.__file__).resolve().parent
MAX_ZIP_BYTES = 1_000_000  # cold start and upload size are features
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold

# Relative to the package root: whole directories (their *.py files) and single modules.
LAMBDA_DIRS = ("alexa", "skill", "notifier", "amazon")
LAMBDA_MODULES = (
    "__init__.py",
    "kvs/__init__.py",
    "kvs/api.py",
    "kvs/client_id.py",
    "kvs/errors.py",
    "kvs/messages.py",
    "store/__init__.py",
    "store/base.py",
    "store/sqlite.py",
    "store/dynamodb.py",
)


class PackagingError(Exception):
    """The Lambda zip could not be built as required."""


def lambda_files(root: Path = PACKAGE_ROOT) -> list[Path]:
    """The package's files that go into the zip, relative to ``root``, sorted.

    Only Python sources: the Alexa schema JSON (tests and the local cloud use it)
    and ``__pycache__`` stay out.
    """
    files = {Path(m) for m in LAMBDA_MODULES if (root / m).is_file()}
    for d in LAMBDA_DIRS:
        base = root / d
        if base.is_dir():
            files.update(p.relative_to(root) for p in base.rglob("*.py") if p.is_file())
    missing = [m for m in ("__init__.py", "store/base.py") if Path(m) not in files]
    if missing:
        raise PackagingError(f"package at {root} lacks {', '.join(missing)}")
    return sorted(f for f in files if "__pycache__" not in f.parts)


def build_lambda_zip(output: Path, *, root: Path = PACKAGE_ROOT) -> Path:
    """Write the Lambda zip to ``output`` (parents created) and return its path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for rel in lambda_files(root):
            info = zipfile.ZipInfo(f"{root.name}/{rel.as_posix()}", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            info.create_system = 3  # Unix, so the permissions above are honoured
            zf.writestr(info, (root / rel).read_bytes(), compresslevel=9)
    size = tmp.stat().st_size
    if size > MAX_ZIP_BYTES:
        tmp.unlink()
        raise PackagingError(
            f"Lambda zip would be {size} bytes, over the {MAX_ZIP_BYTES} byte budget: "
            "something heavy slipped onto the Lambda path"
        )
    os.replace(tmp, output)
    return output
