"""botbuilder's `Storage` over our DocumentStore: dialog and conversation state in SQLite or Redis.

botbuilder's own storages serialize with jsonpickle, which can instantiate any class on load. We keep
values as plain JSON and know exactly two botbuilder types (the dialog stack); anything else that is not
JSON is refused when written, so a bug shows up at once instead of as a corrupted conversation later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botbuilder.core import Storage, StoreItem
from botbuilder.dialogs import DialogInstance, DialogState

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import DocumentStore

_TYPE = "$type"


def encode(value: Any) -> Any:
    """Turn a state value into JSON-compatible data."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, DialogState):
        return {_TYPE: "DialogState", "stack": [encode(i) for i in value.dialog_stack]}
    if isinstance(value, DialogInstance):
        return {_TYPE: "DialogInstance", "id": value.id, "state": encode(value.state)}
    if isinstance(value, datetime):
        return {_TYPE: "datetime", "iso": value.isoformat()}
    if isinstance(value, StoreItem):
        return {k: encode(v) for k, v in vars(value).items()}
    raise StoreError(f"state value of type {type(value).__name__} cannot be stored as JSON")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_TYPE)
    if kind == "DialogState":
        return DialogState([decode(i) for i in value["stack"]])
    if kind == "DialogInstance":
        instance = DialogInstance(id=value["id"], state=decode(value["state"]))
        return instance
    if kind == "datetime":
        return datetime.fromisoformat(value["iso"])
    return {k: decode(v) for k, v in value.items()}


class StoreStorage(Storage):  # type: ignore[misc]
    """eTag concurrency: a write whose e_tag is stale raises, like botbuilder's storages."""

    def __init__(self, documents: DocumentStore, prefix: str = "botstate:") -> None:
        self._documents = documents
        self._prefix = prefix

    async def read(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        found = await self._documents.read_documents([self._prefix + k for k in keys])
        result: dict[str, Any] = {}
        for key in keys:
            doc = found.get(self._prefix + key)
            if doc is None:
                continue
            item = decode(doc.value)
            if isinstance(item, dict):
                item["e_tag"] = doc.etag
            result[key] = item
        return result

    async def write(self, changes: dict[str, Any]) -> None:
        for key, item in (changes or {}).items():
            etag = item.get("e_tag") if isinstance(item, dict) else getattr(item, "e_tag", None)
            data = encode(item)
            if isinstance(data, dict):
                data.pop("e_tag", None)
            else:
                data = {"value": data}
            try:
                await self._documents.write_document(self._prefix + key, data, etag)
            except ConcurrencyError as exc:
                raise KeyError(f"Etag conflict for {key}: the state was changed by another turn") from exc

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self._documents.delete_documents([self._prefix + k for k in keys])
