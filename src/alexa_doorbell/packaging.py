"""Build the Lambda zip: the Lambda's packages, and what they import from the floors below.

The zip holds every module of ``skill/`` and ``notifier/`` (the two Lambda
functions) and the modules of the floors beneath them (``LOWER_PACKAGES``) that
those import, directly or lazily, found by walking the imports with ``ast``. A
module outside these packages on that path, or one importing a library the
Lambda runtime lacks, stops the build with its name: the folders hold the
Lambda boundary, not a list of files. The runtime provides boto3, botocore and
urllib3; everything else comes from the standard library.

The zip is reproducible (fixed timestamps and permissions, sorted entries):
building twice from the same source gives the same bytes, so ``sam deploy``
only uploads a new version when the code changed.
"""

from __future__ import annotations

import ast
import os
import sys
import zipfile
from pathlib import Path

import alexa_doorbell

PACKAGE_ROOT = Path(alexa_doorbell.__file__).resolve().parent
MAX_ZIP_BYTES = 1_000_000  # cold start and upload size are features
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold

# The two Lambda functions' packages, whole (DESIGN.md's floors, lowest first).
LAMBDA_PACKAGES = ("skill", "notifier")
# The floors beneath them: only the modules the Lambda packages import.
LOWER_PACKAGES = ("alexa", "kvs", "amazon", "store", "lambda_config")
# What the Lambda runtime has besides the standard library.
RUNTIME_LIBRARIES = frozenset({"boto3", "botocore", "urllib3"})


class PackagingError(Exception):
    """The Lambda zip could not be built as required."""


def lambda_files(root: Path = PACKAGE_ROOT) -> list[Path]:
    """The package's files that go into the zip, relative to ``root``, sorted.

    Only Python sources, each with its packages' ``__init__.py``: the Alexa schema
    JSON and its validator (tests and the local cloud use them), the camera's KVS
    signaling and ``__pycache__`` stay out.
    """
    if not (root / "__init__.py").is_file() or not (root / "store" / "base.py").is_file():
        raise PackagingError(f"package at {root} lacks __init__.py or store/base.py")
    name = root.name
    todo = [
        p.relative_to(root)
        for d in LAMBDA_PACKAGES
        if (root / d).is_dir()
        for p in (root / d).rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    todo += [Path("__init__.py"), Path("store") / "base.py"]
    files: set[Path] = set()
    while todo:
        rel = todo.pop()
        if rel in files:
            continue
        if rel.parts[0] not in (*LAMBDA_PACKAGES, *LOWER_PACKAGES) and len(rel.parts) > 1:
            raise PackagingError(
                f"{name}/{rel.as_posix()} is on the Lambda path but outside the Lambda's "
                f"packages ({', '.join((*LOWER_PACKAGES, *LAMBDA_PACKAGES))})"
            )
        if len(rel.parts) == 1 and rel.name != "__init__.py":
            raise PackagingError(f"{name}/{rel.as_posix()} is on the Lambda path: keep it off")
        files.add(rel)
        for parent in rel.parents:
            if (root / parent / "__init__.py").is_file():
                todo.append(parent / "__init__.py")
        for module in _imports(root / rel, name):
            if module.split(".")[0] == name:
                todo.extend(_module_files(root, module))
            elif not _available_in_lambda(module):
                raise PackagingError(
                    f"{name}/{rel.as_posix()} imports {module}, which the Lambda runtime "
                    "lacks: keep it off the skill and notifier path"
                )
    return sorted(files)


def _imports(path: Path, package: str) -> list[str]:
    """Modules ``path`` imports at run time (lazy ones too; not TYPE_CHECKING-only).

    A file that is not Python has no imports to follow (nor could Python import it).
    """
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []  # what only a type checker sees never runs
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            if node.module.split(".")[0] == package:  # from pkg import submodule
                found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_files(root: Path, module: str) -> list[Path]:
    """The file of ``alexa_doorbell.x.y`` (module or package), or nothing (a name in it)."""
    rel = Path(*module.split(".")[1:])
    if (root / rel).with_suffix(".py").is_file():
        return [rel.with_suffix(".py")]
    if (root / rel / "__init__.py").is_file():
        return [rel / "__init__.py"]
    return []


def _available_in_lambda(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top in RUNTIME_LIBRARIES


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
