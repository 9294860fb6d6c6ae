"""Parameter types shared by the API routes: the service state, the caller and the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from costwarden.service.api.models import Pagination, pagination
from costwarden.service.auth import Caller, require_admin, require_read
from costwarden.service.state import ServiceState


async def current_state(request: Request) -> ServiceState:
    """FastAPI dependency: the process's service state.

    It does what ``state.service_state`` does, but as a coroutine, so FastAPI does not send it to
    a worker thread on every request.
    """
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(current_state)]
Reader = Annotated[Caller, Depends(require_read)]
Admin = Annotated[Caller, Depends(require_admin)]
PageQuery = Annotated[Pagination, Depends(pagination)]
