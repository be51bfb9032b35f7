"""Wire models of the review endpoints (console-api.md, "Reviews"). They stop at `api/`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from openautotune.service.reviews import MAX_COMMENT


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None


class ReviewOut(BaseModel):
    id: str
    autotuneID: str
    action: str
    status: str
    change: dict[str, Any]
    authorID: str
    createdTime: int
    reviewerID: str | None
    decidedTime: int | None
    comment: str | None


class ReviewAnswer(BaseModel):
    message: str
    data: ReviewOut


class ReviewPagination(BaseModel):
    itemsPerPage: int
    pageNumber: int
    nextPage: str | None
    previousPage: str | None
    totalItems: int
    all: str


class ReviewListAnswer(BaseModel):
    message: str
    data: list[ReviewOut]
    pagination: ReviewPagination


class ReviewSubmitted(BaseModel):
    reviewID: str
    status: str


class ReviewSubmittedAnswer(BaseModel):
    message: str
    data: ReviewSubmitted


class ReviewSettings(BaseModel):
    requireReviews: bool


class ReviewSettingsAnswer(BaseModel):
    message: str
    data: ReviewSettings
