"""A study's best trials, as a list and as a table (for progress lines and the report)."""
from __future__ import annotations

from optuna.trial import TrialState


def top_trials(study, direction: str, n: int = 5) -> list:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: t.value if direction == "minimize" else -t.value)[:n]


def format_table(trials, metric: str, budget_attr: str = "best_rounds", budget_name: str = "rounds") -> str:
    if not trials:
        return "  (no complete trials)"
    names = sorted({k for t in trials for k in t.params})
    header = f"  {'#':>4} {metric:>16} {budget_name:>7} {'seconds':>8}  " + "  ".join(names)
    lines = [header]
    for t in trials:
        values = "  ".join(f"{_fmt(t.params.get(k)):>{len(k)}}" for k in names)
        lines.append(f"  {t.number:>4} {t.value:>16.4f} {t.user_attrs.get(budget_attr, ''):>7} "
                     f"{t.user_attrs.get('seconds', float('nan')):>8.1f}  {values}")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
