"""Errors of the competition mode, each with a message a student or teacher can act on."""

from __future__ import annotations

from seglab.errors import SeglabError


class CompetitionError(SeglabError):
    """A competition, team or admin action is invalid (unknown name, closed, quota used up...)."""


class SubmissionRejected(CompetitionError):
    """An upload failed validation; nothing was stored and nothing counts against the quota."""


class ScoringError(CompetitionError):
    """A submission could not be scored (its own fault): it is marked failed with this message."""


class ScoringUnavailable(ScoringError):
    """This kind of submission cannot be scored by this seglab (a plug-in is not installed yet)."""
