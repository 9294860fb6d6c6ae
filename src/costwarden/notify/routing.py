"""Route notices to channels with the rules under ``notify.routes``.

Rules are tried in order. A rule matches a notice when every condition it sets holds: the kind,
the minimum severity, a budget name glob and the scope labels. A matching rule adds its channels,
and a rule with ``stop`` ends the search. A channel name may hold ``{label}`` placeholders that
the notice's labels fill, so ``slack-{team}`` becomes ``slack-payments`` for ``team=payments``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

from costwarden.config import NotifySettings, RouteSettings
from costwarden.notify.notice import SEVERITY_RANK, Notice

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class Router:
    """Match notices against the routing rules of one configuration.

    One router serves one pass: a channel placeholder that cannot be filled is logged once per
    router, not once per notice.
    """

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._warned: set[tuple[str, str]] = set()

    def route(self, notice: Notice) -> list[tuple[str, str]]:
        """Return the (channel, route name) pairs of a notice, each channel once, in rule order."""
        targets: dict[str, str] = {}
        for rule in self.settings.routes:
            if not rule_matches(rule, notice):
                continue
            for pattern in rule.channels:
                channel = self._fill(rule, pattern, notice.labels)
                if channel is not None and channel not in targets:
                    targets[channel] = rule.name
            if rule.stop:
                break
        return list(targets.items())

    def _fill(self, rule: RouteSettings, pattern: str, labels: Mapping[str, str]) -> str | None:
        """Fill the placeholders of a channel name; None when a label or the channel is missing."""
        missing = [key for key in PLACEHOLDER.findall(pattern) if not labels.get(key)]
        if missing:
            self._warn_once(
                rule.name,
                pattern,
                "route %r: channel %r needs the label %r, which the alert does not have; "
                "skipping that channel",
                missing[0],
            )
            return None

        channel = PLACEHOLDER.sub(lambda match: labels[match.group(1)], pattern)
        if channel not in self.settings.channels:
            self._warn_once(
                rule.name,
                channel,
                "route %r: channel %r is not defined under notify.channels; skipping it",
                None,
            )
            return None
        return channel

    def _warn_once(self, rule: str, channel: str, message: str, label: str | None) -> None:
        if (rule, channel) in self._warned:
            return
        self._warned.add((rule, channel))
        if label is None:
            logger.warning(message, rule, channel)
        else:
            logger.warning(message, rule, channel, label)


def rule_matches(rule: RouteSettings, notice: Notice) -> bool:
    """Return True when the notice meets every condition of the rule."""
    if rule.kinds is not None and notice.kind not in rule.kinds:
        return False

    if SEVERITY_RANK[notice.severity] < SEVERITY_RANK[rule.min_severity]:
        return False

    if rule.budgets is not None:
        if notice.budget is None:
            return False
        if not any(fnmatchcase(notice.budget, pattern) for pattern in rule.budgets):
            return False

    return all(
        _label_matches(notice.labels.get(key), expected) for key, expected in rule.labels.items()
    )


def _label_matches(value: str | None, expected: str | list[str]) -> bool:
    """Match a label value against a glob or a list of globs; ``*`` only needs the label."""
    if value is None:
        return False
    patterns = [expected] if isinstance(expected, str) else expected
    return any(fnmatchcase(value, pattern) for pattern in patterns)
