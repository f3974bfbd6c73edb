"""Token, device and session stores: one interface, SQLite and DynamoDB.

from alexa_doorbell.store import open_store
store = open_store("sqlite:///var/lib/alexa-doorbell/store.sqlite3")
"""

from __future__ import annotations

from alexa_doorbell.store.base import Device, Store, StoreError


def open_store(url: str) -> Store:
    """A store for ``sqlite:///path`` (``sqlite:///:memory:`` too) or ``dynamodb://table``."""
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise StoreError(f"store URL {url!r} must look like sqlite:///path or dynamodb://table")
    if scheme == "sqlite":
        from alexa_doorbell.store.sqlite import SqliteStore

        # sqlite:///abs/path keeps the leading slash; sqlite:///:memory: stays in memory.
        path = rest[1:] if rest.startswith("/:memory:") else rest
        return SqliteStore(path)
    if scheme == "dynamodb":
        try:
            from alexa_doorbell.store.dynamodb import DynamoDbStore  # type: ignore[import-not-found]
        except ImportError as exc:
            raise StoreError("the DynamoDB store is not available in this build") from exc
        return DynamoDbStore(rest)
    raise StoreError(f"unknown store scheme {scheme!r}: use sqlite:///path or dynamodb://table")


def seed_catalog(store: Store, devices: list[Device]) -> list[tuple[Device | None, Device]]:
    """Add or update configured devices in the store's catalog (writes only on change).

    Returns what changed, as ``(stored before or None, configured)`` pairs.
    """
    changed: list[tuple[Device | None, Device]] = []
    for device in devices:
        stored = store.get_device(device.endpoint_id)
        if stored != device:
            store.put_device(device)
            changed.append((stored, device))
    return changed
