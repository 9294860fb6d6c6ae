"""What an action request's digest binds: the change, not the words that describe it."""

from __future__ import annotations

from dataclasses import replace

from costwarden.domain.governance import DESCRIPTIVE_PARAMS, ActionRequest, ActionScope

REQUEST = ActionRequest(
    action="gitops.pull_request",
    scope=ActionScope(kind="machine_pool", cluster_uid="c-1", cluster="prod-eu", name="worker"),
    params={"repository": "fleet", "pool": "worker", "size": 4, "title": "Scale worker to 4"},
    subject_kind="recommendation",
    subject_id="rec-1",
    expected={"size": 6},
)


def test_wording_leaves_digest_alone() -> None:
    for name in sorted(DESCRIPTIVE_PARAMS):
        reworded = replace(REQUEST, params={**REQUEST.params, name: "other words"})
        assert reworded.digest == REQUEST.digest, name


def test_change_moves_digest() -> None:
    changes = [
        replace(REQUEST, params={**REQUEST.params, "size": 3}),
        replace(REQUEST, params={**REQUEST.params, "repository": "other"}),
        replace(REQUEST, expected={"size": 5}),
        replace(REQUEST, scope=replace(REQUEST.scope, name="batch")),
        replace(REQUEST, rollback_of="run-1"),
    ]

    digests = {request.digest for request in changes}

    assert REQUEST.digest not in digests
    assert len(digests) == len(changes)
