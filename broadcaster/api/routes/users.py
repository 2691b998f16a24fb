"""The commune's accounts, for an admin: who may sign in, and with which role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.auth import Admin
from broadcaster.api.deps import Svc
from broadcaster.api.schemas import UserCreated, UserIn, UserOut, refusals
from broadcaster.services.accounts import create_user, generate_password, list_users

router = APIRouter(tags=["users"])


@router.get("/users", response_model=list[UserOut])
def read_users(who: Admin, svc: Svc) -> list[dict[str, Any]]:
    return list_users(svc, by=who)


@router.post("/users", status_code=201, response_model=UserCreated, responses=refusals(400, 409, 422))
def add_user(body: UserIn, who: Admin, svc: Svc) -> dict[str, Any]:
    """A new account. Its password, given or generated, works once: the admin has seen it, so the
    person chooses their own at the first sign-in. A generated one is in this answer only."""
    password = body.password or generate_password()
    user = create_user(
        svc,
        body.username,
        body.role,
        password,
        actor=who.username,
        display_name=body.display_name,
        must_change_password=True,
        by=who,
    )
    return {**user, "password": None if body.password else password}
