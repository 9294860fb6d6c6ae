"""Budgets: list, read, create, replace, delete and import.

Budgets that come from the budget file (origin ``file``) can be read here but change only with
the file, so writes to them return 409.
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from costwarden.budgets.loader import BudgetModel
from costwarden.errors import (
    ApiError,
    BudgetFileError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    UnsupportedMediaTypeError,
)
from costwarden.service.api.deps import Admin, PageQuery, Reader, State
from costwarden.service.api.errors import ERROR_RESPONSES, ApiRoute, json_response
from costwarden.service.api.imports import specs_from_csv, specs_from_yaml
from costwarden.service.api.models import (
    BudgetDetail,
    BudgetStatusSummary,
    BudgetSummary,
    ImportSummary,
    Page,
)
from costwarden.service.state import ServiceState
from costwarden.store import budgets as stored
from costwarden.store.service_queries import budget_status, list_budgets
from costwarden.store.tables import BudgetStatusRecord, StoredBudget

logger = logging.getLogger(__name__)

router = APIRouter(tags=["budgets"], route_class=ApiRoute, responses=ERROR_RESPONSES)

ANY_VERSION = -1
"""Sentinel version for ``If-Match: *``, which matches any stored version of an existing budget."""

YAML_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
)
CSV_TYPES = ("text/csv", "application/csv")
IMPORT_DESCRIPTION = """\
Create or replace many budgets at once; all-or-nothing. Send the body as the budget file (YAML or
JSON, `Content-Type: application/yaml`), as CSV (`Content-Type: text/csv`), or as a
`multipart/form-data` upload in the field `file` (`.csv`, `.yaml`, `.yml` or `.json`).

CSV columns (header row 1; an empty cell leaves the field unset):
`name` and `amount` (required), `currency` (default USD), `period` (weekly, monthly, quarterly,
yearly, or `2026-01-01..2026-03-31`), `cluster`, `project`, `namespace`, `labels` (a label
selector such as `team=core`), `thresholds` (`;`-separated `TYPE:PERCENT[@PROBABILITY][:SEVERITY]`,
e.g. `actual:80;forecast:100@0.7:critical`), and optional `timezone`, `owner`, `description`,
`source`.

An invalid row returns 422 naming the row, column and value, and nothing is written. With
`replace=true`, API budgets that are not in the upload are deleted. Budgets from the budget file
cannot be replaced here (409).
"""


@router.get("/budgets", response_model=Page[BudgetSummary], summary="List budgets")
def get_budgets(
    page: PageQuery,
    state: State,
    _: Reader,
    origin: Annotated[
        Literal["file", "api"] | None, Query(description="Only budgets of this origin.")
    ] = None,
) -> Response:
    with state.store.transaction() as session:
        found = list_budgets(session, origin=origin, limit=page.limit, offset=page.offset)
        items = [_summary(row) for row in found.items]
    return json_response(Page(items=items, total=found.total, limit=page.limit, offset=page.offset))


@router.get("/budgets/{name}", response_model=BudgetDetail, summary="Read a budget")
def get_budget(
    name: str,
    response: Response,
    state: State,
    _: Reader,
) -> BudgetDetail:
    with state.store.transaction() as session:
        row = _existing(session, name)
        detail = _detail(row, budget_status(session, name))
    response.headers["ETag"] = _etag(detail.version)
    return detail


@router.post(
    "/budgets",
    response_model=BudgetDetail,
    status_code=201,
    summary="Create a budget",
    responses={409: {"description": "A budget with this name exists."}},
)
def create_budget(
    body: BudgetModel,
    response: Response,
    state: State,
    caller: Admin,
) -> BudgetDetail:
    spec = _spec_of(body)
    with state.store.transaction() as session:
        if stored.get_budget_spec(session, body.name) is not None:
            raise ConflictError(
                f"budget {body.name!r} exists; use PUT /api/v1/budgets/{body.name} to replace it"
            )
        row = stored.put_budget(session, spec, "api")
        detail = _detail(row, None)
    logger.info("caller %s created budget %s", caller.name, body.name)
    response.headers["Location"] = f"/api/v1/budgets/{quote(body.name, safe='')}"
    response.headers["ETag"] = _etag(detail.version)
    return detail


@router.put(
    "/budgets/{name}",
    response_model=BudgetDetail,
    summary="Create or replace a budget",
    responses={
        201: {"model": BudgetDetail, "description": "Created."},
        409: {"description": "The budget comes from the budget file."},
        412: {"description": "If-Match does not match the stored version."},
    },
)
def replace_budget(
    name: str,
    body: BudgetModel,
    response: Response,
    state: State,
    caller: Admin,
    if_match: Annotated[
        str | None, Header(description="Version from GET; 412 when it changed.")
    ] = None,
) -> BudgetDetail:
    if body.name != name:
        raise BudgetFileError(
            "request body",
            f"field name: {body.name!r} differs from the budget in the path, {name!r}; "
            "rename a budget by creating the new name and deleting the old one",
            field="name",
            value=body.name,
        )

    expected = _version(if_match)
    with state.store.transaction() as session:
        existing = stored.get_budget_spec(session, name)
        _check_api_origin(existing)
        if expected == ANY_VERSION:
            if existing is None:
                raise PreconditionFailedError(
                    f"If-Match: * needs an existing budget and {name!r} does not exist; "
                    "send the request without If-Match to create it"
                )
            expected = None
        row = stored.put_budget(session, _spec_of(body), "api", expected_version=expected)
        detail = _detail(row, budget_status(session, name))
    response.status_code = 201 if existing is None else 200
    response.headers["ETag"] = _etag(detail.version)
    logger.info("caller %s wrote budget %s version %d", caller.name, name, detail.version)
    return detail


@router.delete(
    "/budgets/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete a budget",
    responses={404: {"description": "No such budget."}, 409: {"description": "From the file."}},
)
def remove_budget(
    name: str,
    state: State,
    caller: Admin,
    if_match: Annotated[
        str | None, Header(description="Version from GET; 412 when it changed.")
    ] = None,
) -> Response:
    expected = _version(if_match)
    with state.store.transaction() as session:
        row = _existing(session, name)
        _check_api_origin(row)
        if expected is not None and expected != ANY_VERSION:
            stored.check_version(session, name, expected)
        stored.delete_budget(session, name)
    logger.info("caller %s deleted budget %s", caller.name, name)
    return Response(status_code=204)


@router.post(
    "/budgets:import",
    response_model=ImportSummary,
    summary="Import budgets from YAML or CSV",
    description=IMPORT_DESCRIPTION,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
    responses={409: {"description": "A budget in the upload comes from the budget file."}},
)
async def import_budgets(
    request: Request,
    state: State,
    caller: Admin,
    replace: Annotated[
        bool, Query(description="Delete API budgets that are not in the upload.")
    ] = False,
) -> ImportSummary:
    limit = state.settings.service.max_body_bytes
    filename, kind, text = await _read_upload(request, limit)
    specs = specs_from_csv(text, filename) if kind == "csv" else specs_from_yaml(text, filename)
    result = await run_in_threadpool(_import, state, specs, replace)
    logger.info(
        "caller %s imported %s: %d created, %d updated, %d unchanged, %d deleted",
        caller.name,
        filename,
        len(result.created),
        len(result.updated),
        len(result.unchanged),
        len(result.deleted),
    )
    return result


def _import(state: ServiceState, specs: list[dict[str, Any]], replace: bool) -> ImportSummary:
    with state.store.transaction() as session:
        from_file = [
            spec["name"]
            for spec in specs
            if (row := stored.get_budget_spec(session, spec["name"])) is not None
            and row.origin == "file"
        ]
        if from_file:
            raise ConflictError(
                f"budgets {', '.join(repr(name) for name in from_file[:5])} come from the "
                "budget file; change them there or rename them in the upload"
            )
        result = stored.import_budgets(session, specs, "api", replace_origin=replace)
    return ImportSummary(
        created=list(result.created),
        updated=list(result.updated),
        unchanged=list(result.unchanged),
        deleted=list(result.deleted),
    )


async def _read_upload(request: Request, limit: int) -> tuple[str, str, str]:
    """Return the upload's file name, its kind (csv or yaml) and its text."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(_too_large(limit))

    if content_type == "multipart/form-data":
        return await _read_form(request, limit)
    kind = _kind_of(content_type, None)
    data = await _read_body(request, limit)
    return "request body", kind, _text(data, "request body")


async def _read_form(request: Request, limit: int) -> tuple[str, str, str]:
    async with request.form(max_files=1, max_fields=10, max_part_size=limit) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UnsupportedMediaTypeError(
                "the multipart upload has no file in the field 'file'; send it as file=@budgets.csv"
            )
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLargeError(_too_large(limit))
        filename = upload.filename or "upload"
        part_type = (upload.content_type or "").split(";")[0].strip().lower()
        return filename, _kind_of(part_type, filename), _text(data, filename)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise PayloadTooLargeError(_too_large(limit))
    return bytes(chunks)


def _kind_of(content_type: str, filename: str | None) -> str:
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if suffix == ".csv" or content_type in CSV_TYPES:
        return "csv"
    if suffix in (".yaml", ".yml", ".json") or content_type in YAML_TYPES:
        return "yaml"
    raise UnsupportedMediaTypeError(
        f"cannot import {content_type or 'a body without Content-Type'}"
        f"{f' ({filename})' if filename else ''}; send text/csv, application/yaml, or a "
        "multipart upload of a .csv, .yaml or .json file"
    )


def _text(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaTypeError(
            f"{filename}: byte {exc.start} is not UTF-8; save the file as UTF-8"
        ) from exc


def _too_large(limit: int) -> str:
    return (
        f"the body is larger than {limit} bytes; split the import or raise service.max_body_bytes"
    )


def _existing(session: Any, name: str) -> StoredBudget:
    row = stored.get_budget_spec(session, name)
    if row is None:
        raise NotFoundError(f"no budget named {name!r}; GET /api/v1/budgets lists them")
    return row


def _check_api_origin(row: StoredBudget | None) -> None:
    if row is not None and row.origin == "file":
        raise ConflictError(
            f"budget {row.name!r} comes from the budget file (the ConfigMap); change it there, "
            "because the next file sync would overwrite a change made here"
        )


def _etag(version: int) -> str:
    return f'"{version}"'


def _version(if_match: str | None) -> int | None:
    """Return the version that ``If-Match`` expects, ``ANY_VERSION`` for ``*``, or None.

    Both the quoted ETag (``"3"``) and a bare version number (``3``) are accepted.
    """
    if if_match is None:
        return None
    text = if_match.strip()
    if text == "*":
        return ANY_VERSION
    text = text.removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ApiError(f"If-Match {if_match!r} is not a budget version; send the ETag from GET")
    return int(text)


def _spec_of(body: BudgetModel) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_unset=True)


def _summary(row: Any) -> BudgetSummary:
    spec = row.spec
    status = None
    if row.status_as_of is not None:
        status = BudgetStatusSummary(
            as_of=row.status_as_of,
            run_id=row.status_run_id,
            spend_to_date=row.spend_to_date,
            forecast_total=row.forecast_total,
            exceedance_probability=row.exceedance_probability,
            breach_date=row.breach_date,
            problem=row.problem,
        )
    return BudgetSummary(
        name=row.name,
        origin=row.origin,
        version=row.version,
        amount=spec["amount"],
        currency=spec["currency"],
        period=spec["period"],
        scope=spec.get("scope", {}),
        updated_at=row.updated_at,
        status=status,
    )


def _detail(row: StoredBudget, status: BudgetStatusRecord | None) -> BudgetDetail:
    return BudgetDetail(
        name=row.name,
        origin=row.origin,  # type: ignore[arg-type]
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        spec=row.spec,
        status=status.payload if status is not None else None,
    )
