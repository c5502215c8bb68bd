"""The dashboard page: per team and per agent, by week or month, with charts that open the calls behind
them. Its choices (grain, grouping, one team or agent) travel in the session, as the call list's do."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from qa_audio.results.dashboard import GRAINS, GROUPINGS, Dashboard, build_dashboard
from qa_audio.results.export import Period
from qa_audio.web.charts import Line, Point, bar_chart, hbar_chart, line_chart
from qa_audio.web.labels import titled
from qa_audio.web.state import state, store, user

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
def dashboard():
    choice = session.get("dashboard", {})
    grain = choice.get("grain") if choice.get("grain") in GRAINS else "week"
    by = "agent" if user().is_agent else (choice.get("by") if choice.get("by") in GROUPINGS else "team")
    facets = store().facets(user().scope)
    teams = set(facets["teams"])
    agents = {a for a, _name in facets["agents"]}
    team = choice.get("team") if choice.get("team") in teams else None
    agent = choice.get("agent") if choice.get("agent") in agents else None
    board = build_dashboard(store(), grain=grain, by=by, scope=user().scope, team=team, agent=agent)
    cells = _cell_filters(board)
    return render_template("dashboard.html", board=board, facets=facets, cells=cells,
                           charts=_charts(board, pass_mark=state().config.scoring.pass_score, cells=cells),
                           grains=GRAINS, groupings=GROUPINGS)


@bp.post("/dashboard")
def choose():
    form = request.form
    session["dashboard"] = {k: form.get(k, "").strip()[:200] for k in ("grain", "by", "team", "agent")}
    return redirect(url_for("dashboard.dashboard"))


def _base(board: Dashboard) -> dict[str, str]:
    out = {}
    if board.team:
        out["team"] = board.team
    if board.agent:
        out["agent"] = board.agent
    return out


def _dates(first: Period, last: Period) -> dict[str, str]:
    """The call list's date filters from the first day of ``first`` to the last of ``last``."""
    return {"date_from": first.start.isoformat(), "date_to": last.last.isoformat()}


def _cell_filters(board: Dashboard) -> dict[tuple[str, str], dict[str, str]]:
    """(team or agent, period) → the call-list filters of its calls: a table cell's and a line's point's."""
    column = "team" if board.by == "team" else "agent"
    return {(s.key, p.label): {**_base(board), column: s.key, **_dates(p, p)}
            for s in board.series for p in board.periods}


def _charts(board: Dashboard, *, pass_mark: float, cells: dict[tuple[str, str], dict[str, str]]) -> dict:
    labels = [p.label for p in board.periods]
    lines = []
    for s in board.series[:8]:
        points = []
        for p, cell in zip(board.periods, s.cells):
            value = cell.mean_score if cell else None
            shown = "–" if value is None else format(value, "g")
            tip = f"{s.key} {p.label}: " + (_("mean %(score)s over %(n)s calls", score=shown, n=cell.scored)
                                             if cell and value is not None else "–")
            points.append(Point(value, tip, cells[(s.key, p.label)]))
        lines.append(Line(f"{s.key} {s.name}".strip(), tuple(points)))
    volume = [Point(cell.calls if cell else 0,
                    f"{p.label}: " + _("%(n)s calls", n=cell.calls if cell else 0), {**_base(board), **_dates(p, p)})
              for p, cell in zip(board.periods, board.overall)]
    failed = board.most_failed
    span = _dates(board.periods[0], board.periods[-1]) if board.periods else {}
    fail_bars = [Point(r.failed, _("%(rule)s failed on %(n)s of %(judged)s calls", rule=r.rule, n=r.failed,
                                   judged=r.judged), {**_base(board), **span, "rule": r.rule}) for r in failed]
    health = board.rule_health
    health_bars = [Point(100 * (r.overturn_rate or 0), _("%(rule)s: %(over)s of %(n)s reviewed findings overturned",
                                                         rule=r.rule, over=r.overturned, n=r.reviewed),
                         {**_base(board), **span, "rule": r.rule}) for r in health]
    mark = format(pass_mark, "g")
    return {
        "score": line_chart(lines, labels, guide=pass_mark, guide_label=_("pass mark %(mark)s", mark=mark),
                            title=_("Mean final score"), chart_id="chart-score"),
        "volume": bar_chart(volume, labels, title=_("Calls scored"), chart_id="chart-volume"),
        "failed": hbar_chart(fail_bars, [f"{r.rule} {titled(r)}" for r in failed], title=_("Most failed standards"),
                             chart_id="chart-failed"),
        "health": hbar_chart(health_bars, [f"{r.rule} {titled(r)}" for r in health], maximum=100,
                             title=_("Findings overturned on review"), chart_id="chart-health",
                             color="#9a6700", value_format="{:.0f}%"),
    }
