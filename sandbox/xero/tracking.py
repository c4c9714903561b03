"""Tracking categories and their options for one organisation, with the limits Xero documents.

Sources (https://developer.xero.com/documentation/api/accounting/trackingcategories and the official
OpenAPI spec `specs/xero/xero_accounting.yaml`, schemas `TrackingCategory` / `TrackingOption`):

- a category has `Name` (max 100), `Status` (ACTIVE, ARCHIVED; DELETED only in the answer to a DELETE)
  and `Options`; an option has `TrackingOptionID`, `Name` (max 100) and `Status` (ACTIVE, ARCHIVED);
- an organisation may have at most **2 ACTIVE** tracking categories, and at most 4 in all (ACTIVE and
  ARCHIVED). The page does not quote the error text for a third active category; like every other
  Accounting validation failure it is a 400 ValidationException, with the message below (our wording);
- names are unique among the categories, and an option's name is unique within its category
  ("For each specified tracking option the name must be unique", as Xero answers it);
- `GET /TrackingCategories` leaves ARCHIVED categories and options out unless `includeArchived=true`
  (the spec: "Categories and options with a status of ARCHIVED will be included in the response");
  deleted ones are gone from every read, as deleted accounts are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.xero.resources import Kind, Record, XeroValidationError, normalise

MAX_ACTIVE = 2
MAX_TOTAL = 4
NAME_MAX = 100
TOO_MANY_ACTIVE = "You can only have 2 active tracking categories. Archive one before adding another."
TOO_MANY_TOTAL = "You can only have 4 tracking categories (active and archived)."
STATUSES = ("ACTIVE", "ARCHIVED")

# Field order is the order Xero writes them in (the spec's examples).
CATEGORY_FIELDS: dict[str, Kind] = {
    "Name": Kind.STRING,
    "Status": Kind.STRING,
    "TrackingCategoryID": Kind.GUID,
    "Options": Kind.LIST,
}
OPTION_FIELDS: dict[str, Kind] = {"TrackingOptionID": Kind.GUID, "Name": Kind.STRING, "Status": Kind.STRING}


class UnknownTracking(KeyError):
    """No such tracking category or option."""


def _name(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise XeroValidationError("Please enter a Name.")
    if len(name) > NAME_MAX:
        raise XeroValidationError(f"Name must be {NAME_MAX} characters or fewer.")
    return name


def _status(value: Any) -> str:
    status = str(value or "ACTIVE").upper()
    if status not in STATUSES:
        raise XeroValidationError(f"Status '{status}' is not valid.")
    return status


@dataclass
class Tracking:
    """An organisation's tracking categories, in the order they were added."""

    new_id: Callable[[str], str]
    categories: dict[str, Record] = field(default_factory=dict)

    def category(self, category_id: str) -> Record:
        found = self.categories.get(category_id.lower())
        if found is None:
            raise UnknownTracking(f"no tracking category {category_id}")
        return found

    def option(self, category_id: str, option_id: str) -> Record:
        for option in self.category(category_id)["Options"]:
            if option["TrackingOptionID"] == option_id.lower():
                return option  # type: ignore[no-any-return]
        raise UnknownTracking(f"no tracking option {option_id} in category {category_id}")

    def _check_limits(self, category_id: str, status: str) -> None:
        others = [c for c in self.categories.values() if c["TrackingCategoryID"] != category_id]
        if status == "ACTIVE" and sum(c["Status"] == "ACTIVE" for c in others) >= MAX_ACTIVE:
            raise XeroValidationError(TOO_MANY_ACTIVE)
        if category_id not in self.categories and len(others) >= MAX_TOTAL:
            raise XeroValidationError(TOO_MANY_TOTAL)

    def _check_unique(self, category_id: str, name: str) -> None:
        for other in self.categories.values():
            if other["TrackingCategoryID"] != category_id and other["Name"].casefold() == name.casefold():
                raise XeroValidationError("Please enter a unique Name.")

    def add_category(self, fields: Mapping[str, Any], *, category_id: str | None = None) -> str:
        f = normalise(fields, CATEGORY_FIELDS)
        category_id = (
            category_id or str(f.get("TrackingCategoryID") or "") or self.new_id("tracking")
        ).lower()
        if category_id in self.categories:
            raise XeroValidationError(f"TrackingCategoryID {category_id} already exists.")
        name, status = _name(f.get("Name")), _status(f.get("Status"))
        self._check_unique(category_id, name)
        self._check_limits(category_id, status)
        self.categories[category_id] = {
            "Name": name,
            "Status": status,
            "TrackingCategoryID": category_id,
            "Options": [],
        }
        for option in f.get("Options") or []:
            self.add_option(category_id, option)
        return category_id

    def update_category(self, category_id: str, fields: Mapping[str, Any]) -> None:
        """Rename it, or archive it / make it active again (which counts against the active limit)."""
        record = self.category(category_id)
        f = normalise(fields, ("Name", "Status"))
        name = _name(f.get("Name", record["Name"]))
        status = _status(f.get("Status", record["Status"]))
        self._check_unique(record["TrackingCategoryID"], name)
        if status != record["Status"]:
            self._check_limits(record["TrackingCategoryID"], status)
        record["Name"], record["Status"] = name, status

    def delete_category(self, category_id: str) -> Record:
        """Deleted: gone from every read. Returns the record as the DELETE answers it (Status DELETED)."""
        record = self.category(category_id)
        del self.categories[record["TrackingCategoryID"]]
        return {**record, "Status": "DELETED"}

    def add_option(self, category_id: str, fields: Mapping[str, Any], *, option_id: str | None = None) -> str:
        record = self.category(category_id)
        f = normalise(fields, OPTION_FIELDS)
        option_id = (option_id or str(f.get("TrackingOptionID") or "") or self.new_id("option")).lower()
        name = _name(f.get("Name"))
        self._check_option_unique(record, option_id, name)
        record["Options"].append(
            {"TrackingOptionID": option_id, "Name": name, "Status": _status(f.get("Status"))}
        )
        return option_id

    def update_option(self, category_id: str, option_id: str, fields: Mapping[str, Any]) -> None:
        record, option = self.category(category_id), self.option(category_id, option_id)
        f = normalise(fields, ("Name", "Status"))
        name = _name(f.get("Name", option["Name"]))
        self._check_option_unique(record, option["TrackingOptionID"], name)
        option["Name"], option["Status"] = name, _status(f.get("Status", option["Status"]))

    def delete_option(self, category_id: str, option_id: str) -> None:
        record, option = self.category(category_id), self.option(category_id, option_id)
        record["Options"].remove(option)

    @staticmethod
    def _check_option_unique(category: Record, option_id: str, name: str) -> None:
        for other in category["Options"]:
            if other["TrackingOptionID"] != option_id and other["Name"].casefold() == name.casefold():
                raise XeroValidationError("For each specified tracking option the name must be unique.")

    def read(self, *, include_archived: bool) -> list[Record]:
        """What `GET /TrackingCategories` returns: copies, archived ones only if asked, ordered by name."""
        out: list[Record] = []
        for record in sorted(self.categories.values(), key=lambda c: c["Name"].casefold()):
            if record["Status"] != "ACTIVE" and not include_archived:
                continue
            options = [
                dict(o)
                for o in sorted(record["Options"], key=lambda o: o["Name"].casefold())
                if include_archived or o["Status"] == "ACTIVE"
            ]
            out.append({**record, "Options": options})
        return out
