"""Placeholder: the dashboard routes (being written)."""

from __future__ import annotations

from fastapi import APIRouter

from wcs_analytics.api.access import ReadAccess


def create_router(access: ReadAccess) -> APIRouter:
    return APIRouter()
