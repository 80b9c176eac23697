"""Class competition mode: teams submit to the teacher's server and are scored on hidden labels.

Modules, one job each:

- :mod:`~seglab.competition.store` the data folder and its SQLite database (WAL), files by content hash;
  :mod:`~seglab.competition.migrations` the versioned schema;
- :mod:`~seglab.competition.competitions` settings, hidden images and the fixed public/private split;
- :mod:`~seglab.competition.teams` teams and hashed join tokens; :mod:`~seglab.competition.quota` quotas;
- :mod:`~seglab.competition.archive`, :mod:`~seglab.competition.mask_zip`, :mod:`~seglab.competition.validation`
  upload checks; :mod:`~seglab.competition.submissions` accepting and listing submissions;
- :mod:`~seglab.competition.scoring` ``score_submission(kind, path, dataset)``;
  :mod:`~seglab.competition.scores` public/private scores from per-image confusion matrices;
- :mod:`~seglab.competition.jobs` the queue (leases), :mod:`~seglab.competition.worker` the one scoring worker;
- :mod:`~seglab.competition.ranking` leaderboards, :mod:`~seglab.competition.admin` the teacher's actions,
  :mod:`~seglab.competition.audit` their log, :mod:`~seglab.competition.export` CSV export,
  :mod:`~seglab.competition.downloads` the hidden images for students, :mod:`~seglab.competition.cli` the commands.

What students can read through this API is aggregate *public* scores (and per-class public IoU when
the teacher allows it); hidden masks and per-image results never leave the server.
"""

from seglab.competition.competitions import (
    Competition,
    CompetitionSettings,
    create_competition,
    get_competition,
    hidden_split_competition,
    list_competitions,
)
from seglab.competition.errors import CompetitionError, ScoringError, ScoringUnavailable, SubmissionRejected
from seglab.competition.ranking import private_leaderboard, public_leaderboard
from seglab.competition.scoring import register_model_file_scorer, score_submission
from seglab.competition.store import CompetitionStore, default_competition_dir
from seglab.competition.submissions import choose_finals, quota_for, submit, team_submissions
from seglab.competition.teams import add_teams, authenticate

__all__ = [
    "Competition",
    "CompetitionError",
    "CompetitionSettings",
    "CompetitionStore",
    "ScoringError",
    "ScoringUnavailable",
    "SubmissionRejected",
    "add_teams",
    "authenticate",
    "choose_finals",
    "create_competition",
    "default_competition_dir",
    "get_competition",
    "hidden_split_competition",
    "list_competitions",
    "private_leaderboard",
    "public_leaderboard",
    "quota_for",
    "register_model_file_scorer",
    "score_submission",
    "submit",
    "team_submissions",
]
