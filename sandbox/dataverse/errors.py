"""Dataverse Web API errors: `{"error":{"code":"0x...","message":"..."}}` with the real codes and texts.

The hexadecimal code is unrelated to the HTTP status and sometimes empty (dataverse.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAYLOAD_HELP = "https://go.microsoft.com/fwlink/?linkid=2195293"


@dataclass
class DataverseError(Exception):
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def segment_not_found(segment: str) -> DataverseError:
    return DataverseError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def record_not_found(logical_name: str, record_id: str) -> DataverseError:
    return DataverseError(404, "0x80040217", f"Entity '{logical_name}' With Id = {record_id} Does Not Exist")


def key_not_found(logical_name: str) -> DataverseError:
    return DataverseError(
        404, "0x80040217", f"A record with the specified key values does not exist in {logical_name} entity"
    )


def matching_key_exists() -> DataverseError:
    return DataverseError(412, "0x80040237", "A record with matching key values already exists.")


def version_mismatch() -> DataverseError:
    return DataverseError(
        412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
    )


def duplicate_entity_key(labels: list[str], key_name: str) -> DataverseError:
    return DataverseError(
        412,
        "0x80060892",
        f"A record that has the attribute values {', '.join(labels)} already exists. The entity key {key_name} "
        "requires that this set of attributes contains unique values. Select unique values and try again.",
    )


def duplicate_id() -> DataverseError:
    return DataverseError(412, "0x80040237", "Cannot insert duplicate key.")


def payload_error(entity_set: str, detail: str) -> DataverseError:
    return DataverseError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', For more information on "
        f"this error please follow this help link {PAYLOAD_HELP}  ----> InnerException : "
        f"Microsoft.OData.ODataException: {detail}",
    )


def unknown_body_property(entity_set: str, logical_name: str, name: str) -> DataverseError:
    return payload_error(
        entity_set,
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{logical_name}'. Make sure to "
        "only use property names that are defined by the type or mark the type as open type.",
    )


def unknown_navigation(entity_set: str, name: str) -> DataverseError:
    return payload_error(
        entity_set,
        f"An undeclared property '{name}' which only has property annotations in the payload but no property "
        "value was found in the payload. In OData, only declared navigation properties and declared named "
        "streams can be represented as properties without values.",
    )


def unknown_query_property(logical_name: str, name: str) -> DataverseError:
    return DataverseError(
        400, "0x80060888", f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical_name}'."
    )


def lookup_value_write() -> DataverseError:
    return DataverseError(
        400, "0x80060888", "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead."
    )


def too_long(logical_name: str, column: str, max_length: int) -> DataverseError:
    return DataverseError(
        400,
        "0x80044331",
        f"A validation error occurred.  The length of the '{column}' attribute of the '{logical_name}' entity "
        f"exceeded the maximum allowed length of '{max_length}'.",
    )


def required_missing(logical_name: str, column: str) -> DataverseError:
    # The docs give no text for a missing system-required value; this follows the validation errors above.
    return DataverseError(
        400, "0x80040203", f"A validation error occurred. The attribute '{column}' of '{logical_name}' is required."
    )


def out_of_range(logical_name: str, column: str, value: object, accepted: list[int] | None) -> DataverseError:
    allowed = f" Accepted Values: {','.join(str(v) for v in accepted)}" if accepted else ""
    return DataverseError(
        400,
        "0x8004431A",
        f"A validation error occurred.  The value {value} of '{column}' on record of type '{logical_name}' is "
        f"outside the valid range.{allowed}",
    )


def bad_query(message: str) -> DataverseError:
    return DataverseError(400, "0x80060888", message)


def not_member() -> DataverseError:
    return DataverseError(403, "0x80072560", "The user is not a member of the organization.")


def privilege_denied(
    *, user_id: str, role_count: int, privilege_count: int, privilege: str, privilege_id: str, logical_name: str, otc: int
) -> DataverseError:
    return DataverseError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8, roleCount={role_count}, privilegeCount={privilege_count}, "
        f"accessMode=0), is missing {privilege} privilege (Id={privilege_id}) on OTC={otc} for entity "
        f"'{logical_name}'. context.Caller={user_id}",
    )


def missing_privilege(
    *, user_id: str, role_count: int, privilege_count: int, privilege: str, privilege_id: str
) -> DataverseError:
    """A privilege that is not about a table (Import Customizations, ...)."""
    return DataverseError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8, roleCount={role_count}, privilegeCount={privilege_count}, "
        f"accessMode=0), is missing {privilege} privilege (Id={privilege_id}). context.Caller={user_id}",
    )


def method_not_allowed(method: str) -> DataverseError:
    return DataverseError(405, "0x80060888", f"The requested resource does not support http method '{method}'.")


def unexpected() -> DataverseError:
    return DataverseError(500, "0x80040216", "An unexpected error occurred.")
