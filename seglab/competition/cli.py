"""``seglab competition ...``: run a class competition from the command line.

Whoever can run these commands on the server can read the data folder, so every command here acts
as the teacher (admin); students submit from the app's Competition page (or with ``submit`` and
their token).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seglab.competition.clock import format_duration, format_timestamp, parse_duration, parse_timestamp
from seglab.competition.errors import CompetitionError
from seglab.io.atomic_files import PRIVATE, write_text_atomic

EXAMPLES = """examples (the teacher, on the server, in the seglab folder):
  seglab competition create --name shapes-cup --data shapes --split test --shapes test_size=50 --shapes image_size=96 \\
      --quota 5 --quota-window 1h --team "Team A" --team "Team B"
  seglab competition create --name camvid-cup --data camvid --root ../shared/data/camvid --split test \\
      --teams-csv teams.csv --deadline 2025-06-20T17:00 --tokens-out tokens.csv
  seglab competition teams --add "Team C"              # prints the new token once
  seglab competition teams --reset-token "Team A"      # the old token stops working
  seglab competition worker                            # the scoring queue (the app also starts one)
  seglab competition status                            # queue, worker, public leaderboard
  seglab competition submit --token T3-Qm3x9Kd2pLwZ checkpoints/my-run/best.pt
  seglab competition freeze                            # the public board stops moving (e.g. last hour)
  seglab competition reveal --yes                      # private ranking, no more submissions
  seglab competition rescore --submission 12           # or --all
  seglab competition disqualify --submission 12 --reason "trained on the test images"
  seglab competition export --out results/
"""


def _store(args: argparse.Namespace):
    from seglab.competition.store import CompetitionStore, default_competition_dir

    folder = Path(args.dir) if args.dir else default_competition_dir()
    if args.command_name != "create" and CompetitionStore.open_existing(folder) is None:
        raise CompetitionError(
            f"no competition data in {folder}; create one with 'seglab competition create' (or pass --dir)"
        )
    return CompetitionStore(folder)


def _competition(args: argparse.Namespace, store):
    from seglab.competition.competitions import get_competition

    return get_competition(store, args.competition)


# -- create / teams ---------------------------------------------------------------------------------------
def _print_tokens(competition, issued, tokens_out: str | None) -> None:
    from seglab.competition.teams import token_csv, token_sheet

    print(token_sheet(competition, issued))
    if tokens_out:
        path = Path(tokens_out)
        write_text_atomic(path, token_csv(issued), permissions=PRIVATE)  # never readable by others, even briefly
        print(f"tokens also written to {path} (readable by you only)", file=sys.stderr)


def _team_names(args: argparse.Namespace) -> list[str]:
    from seglab.competition.teams import read_team_csv

    names = list(args.team or [])
    if args.teams_csv:
        names += read_team_csv(Path(args.teams_csv).read_text(encoding="utf-8"))
    return names


def command_create(args: argparse.Namespace) -> int:
    from seglab.cli.arguments import apply_shapes_options, data_spec_from_args
    from seglab.competition.competitions import CompetitionSettings, create_competition, hidden_images
    from seglab.competition.teams import add_teams

    spec = data_spec_from_args(args)
    if args.shapes:
        apply_shapes_options(spec, args.shapes)
    settings = CompetitionSettings(
        name=args.name,
        spec=spec,
        metric=args.metric,
        public_share=args.public_share,
        split_seed=args.split_seed,
        quota_count=args.quota,
        quota_window_s=parse_duration(args.quota_window),
        deadline=parse_timestamp(args.deadline) if args.deadline else None,
        kinds=tuple(kind.strip() for kind in args.kinds.split(",") if kind.strip()),
        max_finals=args.max_finals,
        max_upload_mb=args.max_upload_mb,
        show_class_iou=args.show_class_iou,
        time_limit_s=parse_duration(args.time_limit),
        memory_limit_mb=args.memory_limit_mb,
    )
    names = _team_names(args)
    store = _store(args)
    competition = create_competition(store, settings)
    images = hidden_images(store, competition)
    public = sum(image.is_public for image in images)
    print(
        f"created {competition.name} in {store.folder}: {competition.spec.describe()}, {len(images)} hidden images "
        f"({public} public, {len(images) - public} private), metric {competition.metric}, "
        f"quota {competition.quota_count} per {format_duration(competition.quota_window_s)}",
        file=sys.stderr,
    )
    if names:
        _print_tokens(competition, add_teams(store, competition, names), args.tokens_out)
    return 0


def command_teams(args: argparse.Namespace) -> int:
    from seglab.competition.teams import add_teams, list_teams, reset_token

    store = _store(args)
    competition = _competition(args, store)
    names = _team_names(args)
    if names:
        _print_tokens(competition, add_teams(store, competition, names), args.tokens_out)
    elif args.reset_token:
        _print_tokens(competition, [reset_token(store, competition, args.reset_token)], args.tokens_out)
    else:
        teams = list_teams(store, competition)
        print(
            "\n".join(team.name for team in teams) if teams else f"no teams in {competition.name} yet (add with --add)"
        )
    return 0


# -- submit / worker ---------------------------------------------------------------------------------------
def command_submit(args: argparse.Namespace) -> int:
    from seglab.competition.submissions import submit
    from seglab.competition.teams import authenticate

    store = _store(args)
    competition = _competition(args, store)
    team = authenticate(store, competition, args.token)
    path = Path(args.file)
    if not path.is_file():
        raise CompetitionError(f"{path} is not a file")
    with open(path, "rb") as stream:
        receipt = submit(store, competition, team, stream, path.name, kind=args.kind, note=args.note or "")
    print(f"submission #{receipt.submission_id} queued for {team.name}: {receipt.description}")
    print(receipt.quota.describe())
    return 0


def command_worker(args: argparse.Namespace) -> int:
    from seglab.competition.worker import ScoringWorker

    worker = ScoringWorker(_store(args), threads=args.threads, poll_s=args.poll_s, parent_pid=args.parent_pid)
    handled = worker.run(once=args.once)
    print(f"worker stopped after {handled} submission(s)", file=sys.stderr)
    return 0


# -- status ------------------------------------------------------------------------------------------------
def _board_table(board) -> str:
    from seglab.cli.report import format_table

    rows = [
        (
            row.rank,
            row.team,
            row.score,
            *([row.public_score] if board.kind == "private" else []),
            row.submissions,
            format_timestamp(row.submitted_at),
        )
        for row in board.rows
    ]
    header = ("rank", "team", board.metric, *(["public"] if board.kind == "private" else []), "submissions", "best at")
    text = (
        format_table(rows, header, align="rl" + "r" * (len(header) - 3) + "l") if rows else "(no scored submission yet)"
    )
    if board.unranked_teams:
        text += f"\nnot ranked yet: {', '.join(board.unranked_teams)}"
    return text


def command_status(args: argparse.Namespace) -> int:
    from seglab.competition.competitions import hidden_images
    from seglab.competition.jobs import queue_counts
    from seglab.competition.ranking import private_leaderboard, public_leaderboard
    from seglab.competition.worker import worker_status

    store = _store(args)
    competition = _competition(args, store)
    images = hidden_images(store, competition)
    public = sum(image.is_public for image in images)
    deadline = format_timestamp(competition.deadline) if competition.deadline else "none"
    state = competition.state
    print(f"{competition.name} ({state}): {competition.spec.describe()}, {len(images)} hidden images ({public} public)")
    print(f"metric: {competition.metric_description}")
    print(
        f"quota {competition.quota_count} per {format_duration(competition.quota_window_s)}, deadline {deadline}, "
        f"kinds {', '.join(competition.kinds)}"
    )
    counts = queue_counts(store, competition)
    print("queue: " + ", ".join(f"{count} {status}" for status, count in counts.items()))
    worker = worker_status(store)
    if worker is None:
        print("worker: never started (run 'seglab competition worker', or open the app's Competition pages)")
    else:
        alive = "running" if worker.running else "not running"
        print(f"worker: {alive} (pid {worker.pid}, last seen {format_timestamp(worker.last_seen)})")
    print("\npublic leaderboard" + (" (frozen)" if competition.is_frozen else ""))
    print(_board_table(public_leaderboard(store, competition)))
    if args.private or competition.is_revealed:
        print("\nprivate leaderboard" + ("" if competition.is_revealed else " (preview: not revealed)"))
        print(_board_table(private_leaderboard(store, competition, before_reveal=True)))
    return 0


# -- admin actions -----------------------------------------------------------------------------------------
def command_freeze(args: argparse.Namespace) -> int:
    from seglab.competition.admin import freeze, unfreeze

    store = _store(args)
    competition = _competition(args, store)
    (unfreeze if args.undo else freeze)(store, competition)
    print(f"{competition.name}: public leaderboard {'unfrozen' if args.undo else 'frozen'}")
    return 0


def command_reveal(args: argparse.Namespace) -> int:
    from seglab.competition.admin import reveal

    store = _store(args)
    competition = _competition(args, store)
    if not args.yes:
        raise CompetitionError(
            "revealing is final (it publishes the private ranking and closes submissions); add --yes"
        )
    reveal(store, competition)
    print(f"{competition.name}: private ranking revealed; submissions closed")
    return 0


def command_rescore(args: argparse.Namespace) -> int:
    from seglab.competition.admin import rescore

    store = _store(args)
    competition = _competition(args, store)
    if not args.all and not args.submission:
        raise CompetitionError("name the submissions to rescore (--submission ID, repeatable) or pass --all")
    count = rescore(store, competition, None if args.all else args.submission)
    print(f"{count} submission(s) queued again; the worker scores them next")
    return 0


def command_disqualify(args: argparse.Namespace) -> int:
    from seglab.competition.admin import disqualify, reinstate

    store = _store(args)
    competition = _competition(args, store)
    if args.undo:
        reinstate(store, competition, args.submission)
        print(f"submission #{args.submission} reinstated")
    else:
        disqualify(store, competition, args.submission, args.reason or "")
        print(f"submission #{args.submission} disqualified: {args.reason}")
    return 0


def command_export(args: argparse.Namespace) -> int:
    from seglab.competition.export import export_folder

    store = _store(args)
    competition = _competition(args, store)
    for path in export_folder(store, competition, args.out):
        print(path)
    return 0


# -- the parser ----------------------------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, *, competition: bool = True) -> None:
    parser.add_argument(
        "--dir",
        help="competition data folder (default: $SEGLAB_COMPETITION_DIR, else competition/ beside the runs folder)",
    )
    if competition:
        parser.add_argument("--competition", help="competition name (default: the newest one)")


def add_competition_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``seglab competition`` and its subcommands on the main parser's subcommands."""
    from seglab.cli.arguments import add_data_arguments
    from seglab.competition.competitions import METRICS
    from seglab.competition.scoring import KIND_LABELS

    formatter = argparse.RawDescriptionHelpFormatter
    parser = commands.add_parser(
        "competition",
        help="run a class competition: hidden labels, teams, quotas, a scoring queue, public/private leaderboards",
        description="A class competition on the teacher's server: teams submit checkpoints or mask zips, one worker "
        "scores them on a hidden split, a public leaderboard shows the public images' scores until the reveal.",
        epilog=EXAMPLES,
        formatter_class=formatter,
    )
    sub = parser.add_subparsers(dest="competition_command", metavar="ACTION", required=True)

    def action(name: str, handler, help_text: str, example: str):
        command = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=formatter, epilog=f"example:\n  {example}"
        )
        command.set_defaults(handler=handler, command_name=name)
        return command

    create = action(
        "create",
        command_create,
        "create a competition on a hidden split (and its teams)",
        "seglab competition create --name cup --data shapes --split test --team A --team B",
    )
    create.add_argument("--name", required=True, help="competition name (letters, digits, spaces, _ . -)")
    add_data_arguments(create, split_default="test")
    create.add_argument("--shapes", action="append", metavar="KEY=VALUE", help="Shapes option, e.g. test_size=50")
    create.add_argument(
        "--metric", choices=list(METRICS), default="miou", help="ranking metric (default: miou, MMSeg's)"
    )
    create.add_argument("--public-share", type=float, default=0.3, help="share of hidden images on the public board")
    create.add_argument("--split-seed", type=int, default=0, help="seed of the public/private assignment")
    create.add_argument(
        "--quota", type=int, default=5, help="submissions per team per window (failed ones do not count)"
    )
    create.add_argument("--quota-window", default="1h", help="rolling quota window: 3600, 90m, 1h, 1d (default 1h)")
    create.add_argument("--deadline", help="last submission time, local: YYYY-MM-DDTHH:MM (default: none)")
    create.add_argument(
        "--kinds", default="checkpoint,masks_zip", help=f"allowed kinds, comma-separated: {', '.join(KIND_LABELS)}"
    )
    create.add_argument("--max-finals", type=int, default=2, help="final submissions a team may choose (default 2)")
    create.add_argument("--max-upload-mb", type=float, default=100.0, help="upload size limit (default 100 MB)")
    create.add_argument(
        "--show-class-iou", action="store_true", help="teams see per-class public IoU of their submissions"
    )
    create.add_argument("--time-limit", default="5m", help="wall-clock limit of one scoring (default 5m)")
    create.add_argument("--memory-limit-mb", type=int, default=2048, help="memory one scoring may add (default 2048)")
    create.add_argument("--team", action="append", help="a team name (repeatable)")
    create.add_argument("--teams-csv", help="CSV with a 'team' column (or one name per line)")
    create.add_argument("--tokens-out", help="also write the team,token CSV here (mode 600)")
    _common(create, competition=False)

    teams = action(
        "teams",
        command_teams,
        "list teams, add teams (prints their tokens once) or reset a token",
        'seglab competition teams --add "Team C" --add "Team D"',
    )
    teams.add_argument("--add", dest="team", action="append", help="a new team name (repeatable)")
    teams.add_argument("--teams-csv", help="CSV of new team names")
    teams.add_argument("--reset-token", metavar="TEAM", help="issue a new token for this team")
    teams.add_argument("--tokens-out", help="also write the team,token CSV here (mode 600)")
    _common(teams)

    submit = action(
        "submit",
        command_submit,
        "submit a file for a team (validated at once, then queued)",
        "seglab competition submit --token T3-Qm3x9Kd2pLwZ checkpoints/my-run/best.pt",
    )
    submit.add_argument("file", help="a seglab checkpoint (.pt) or a zip of predicted masks (.zip)")
    submit.add_argument("--token", required=True, help="the team's token")
    submit.add_argument("--kind", choices=list(KIND_LABELS), help="submission kind (default: from the file name)")
    submit.add_argument("--note", help="a note for the team's own list")
    _common(submit)

    worker = action(
        "worker",
        command_worker,
        "score queued submissions (one worker per data folder; Ctrl-C stops)",
        "seglab competition worker --threads 2",
    )
    worker.add_argument(
        "--threads", type=int, default=1, help="torch threads per scoring (default 1: the app stays responsive)"
    )
    worker.add_argument("--poll-s", type=float, default=1.0, help="seconds between looks at an empty queue")
    worker.add_argument("--once", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # set by the app: stop when it stops
    _common(worker, competition=False)

    status = action(
        "status",
        command_status,
        "competition settings, queue, worker and leaderboard",
        "seglab competition status --private",
    )
    status.add_argument(
        "--private", action="store_true", help="also show the private ranking (a preview before the reveal)"
    )
    _common(status)

    freeze = action("freeze", command_freeze, "freeze the public leaderboard (or --undo)", "seglab competition freeze")
    freeze.add_argument("--undo", action="store_true", help="unfreeze")
    _common(freeze)

    reveal = action(
        "reveal",
        command_reveal,
        "reveal the private ranking and close submissions (final)",
        "seglab competition reveal --yes",
    )
    reveal.add_argument("--yes", action="store_true", help="confirm")
    _common(reveal)

    rescore = action(
        "rescore",
        command_rescore,
        "queue submissions to be scored again",
        "seglab competition rescore --submission 12 --submission 14",
    )
    rescore.add_argument("--submission", type=int, action="append", help="submission number (repeatable)")
    rescore.add_argument("--all", action="store_true", help="every scored or failed submission")
    _common(rescore)

    disqualify = action(
        "disqualify",
        command_disqualify,
        "take a submission out of the rankings, with a reason",
        'seglab competition disqualify --submission 12 --reason "used the test labels"',
    )
    disqualify.add_argument("--submission", type=int, required=True, help="submission number")
    disqualify.add_argument("--reason", help="why (the team sees it)")
    disqualify.add_argument("--undo", action="store_true", help="reinstate the submission")
    _common(disqualify)

    export = action(
        "export",
        command_export,
        "write every table (teams, submissions, rankings, log) as CSV files",
        "seglab competition export --out results/",
    )
    export.add_argument("--out", required=True, help="output folder")
    _common(export)
