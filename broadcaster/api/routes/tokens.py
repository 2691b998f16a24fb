"""API tokens for programs: issued to a person, acting at most with their role, shown once, revocable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from broadcaster.api.auth import SignedIn
from broadcaster.api.deps import Svc
from broadcaster.api.schemas import TokenCreated, TokenIn, TokenOut, refusals
from broadcaster.services.accounts import issue_token, list_tokens, revoke_token

router = APIRouter(tags=["tokens"])


@router.get("/tokens", response_model=list[TokenOut])
def read_tokens(who: SignedIn, svc: Svc) -> list[dict[str, Any]]:
    """Your tokens (an admin sees everyone's), newest first, without their secrets."""
    return list_tokens(svc, by=who)


@router.post("/tokens", status_code=201, response_model=TokenCreated, responses=refusals(400, 404, 422))
def create_token(body: TokenIn, who: SignedIn, svc: Svc) -> dict[str, Any]:
    """A new token for yourself (or, for an admin, anyone); its secret is in this answer only."""
    return issue_token(
        svc, body.user or who.username, body.name, body.role, actor=who.username, by=who, scopes=list(body.scopes)
    )


@router.delete("/tokens/{token_id}", response_model=TokenOut, responses=refusals(404, 422))
def delete_token(token_id: int, who: SignedIn, svc: Svc) -> dict[str, Any]:
    """Revoke a token (yours, or anyone's for an admin): refused from now on, whoever holds a copy."""
    return revoke_token(svc, token_id, actor=who.username, by=who)
