"""Slack messages stay inside Block Kit limits, however big the alert, and link the full alert."""

from __future__ import annotations

import json

import httpx
from chat_samples import ALERT_URL, huge_notice, make_delivery, sample_notice
from fakes.slack import CHANNEL_ID, FakeSlack, block_problems, block_text_length

from costwarden.notify import CHANNELS, ChannelContext
from costwarden.notify.slack import (
    MAX_BLOCKS,
    MAX_MESSAGE_TEXT,
    alert_message,
    bullet_list,
    digest_message,
    escape_within,
    resolved_message,
    text_length,
)


def _texts(message: dict[str, object]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_huge_alert_within_limits() -> None:
    message = alert_message(huge_notice(), mentions={"team-1": "U0TEAM1"})

    assert block_problems(message["blocks"]) == []
    assert len(message["blocks"]) <= MAX_BLOCKS
    assert text_length(message["blocks"]) <= MAX_MESSAGE_TEXT
    assert block_text_length(message["blocks"]) <= MAX_MESSAGE_TEXT
    assert message["text"]


def test_markup_facts_within_limits() -> None:
    facts = tuple(("<" * 200, "&" * 2500) for _ in range(12))
    owners = tuple(">" * 300 + str(index) for index in range(12))

    message = alert_message(huge_notice(facts=facts, owners=owners, budget="&" * 255))

    assert block_problems(message["blocks"]) == []
    assert text_length(message["blocks"]) <= MAX_MESSAGE_TEXT


def test_escape_within_limit() -> None:
    assert escape_within("a&b", 10) == "a&amp;b"
    assert len(escape_within("&" * 100, 50)) <= 50
    assert escape_within("&" * 100, 50).startswith("&amp;")


def test_huge_alert_links_full_alert() -> None:
    message = alert_message(huge_notice())
    sections = [block["text"]["text"] for block in message["blocks"]
                if block["type"] == "section" and "text" in block]

    contributors = next(text for text in sections if text.startswith("*Top contributors*"))
    actions = next(text for text in sections if text.startswith("*Recommended actions*"))
    for text in (contributors, actions):
        assert f"<{ALERT_URL}|full alert>" in text
        assert "more in the" in text.splitlines()[-1]


def test_huge_alert_escapes_markup() -> None:
    message = alert_message(huge_notice())
    text = _texts(message)

    assert "&lt;&amp;&gt;" in text
    assert "<&>" not in text


def test_huge_alert_facts_capped() -> None:
    message = alert_message(huge_notice())
    [facts] = [block for block in message["blocks"] if block.get("block_id") == "facts"]

    assert len(facts["fields"]) == 10
    assert facts["fields"][-1]["text"].startswith("*More*")
    assert "6 more facts" in facts["fields"][-1]["text"]


def test_huge_alert_accepted_by_fake() -> None:
    with FakeSlack() as fake, httpx.Client() as client:
        channel = CHANNELS.create("finops", fake.bot_settings(), ChannelContext())
        result = channel.send(make_delivery(notices=(huge_notice(),)), client)

    assert result.external_ref is not None
    assert len(fake.channel_messages(CHANNEL_ID)) == 1


def test_title_cannot_mention_everyone() -> None:
    notice = sample_notice(title="<!channel> spend doubled", budget="<@U0BOSS>")

    message = alert_message(notice)
    mrkdwn = json.dumps(message["blocks"][1:])

    assert message["blocks"][0]["text"]["type"] == "plain_text"
    assert "<!channel>" not in mrkdwn
    assert "<@U0BOSS>" not in mrkdwn
    assert "&lt;@U0BOSS&gt;" in mrkdwn
    assert "<!channel>" not in message["text"]


def test_small_alert_shows_everything() -> None:
    message = alert_message(sample_notice())
    text = _texts(message)

    assert "more in the" not in text
    assert "spark-jobs (namespace): 610.00 USD, 20% of the total" in text
    assert "Rightsize gpu-pool to 3 nodes" in text


def test_bullet_list_counts_hidden_lines() -> None:
    lines = [f"• line {index} " + "x" * 50 for index in range(100)]

    text = bullet_list("Items", lines, 1000, "https://example.com/a")

    shown = [line for line in text.splitlines() if line.startswith("•")]
    assert len(text) <= 1000
    assert text.splitlines()[-1] == f"_…and {100 - len(shown)} more in the " \
        "<https://example.com/a|full alert>_"


def test_digest_of_many_within_limits() -> None:
    notices = tuple(huge_notice(alert_id=f"ba-{index}") for index in range(80))

    message = digest_message(notices)

    assert block_problems(message["blocks"]) == []
    assert text_length(message["blocks"]) <= MAX_MESSAGE_TEXT
    assert "80 alerts" in message["text"]


def test_resolved_message_short() -> None:
    message = resolved_message(huge_notice(state="resolved"))

    assert block_problems(message["blocks"]) == []
    assert message["text"].startswith("Resolved: ")
    assert text_length(message["blocks"]) < 2000


def test_budget_backtick_stays_in_code_span() -> None:
    notice = sample_notice(budget="team`*bold*`<!here>")

    resolved = resolved_message(notice)["blocks"][0]["text"]["text"]

    assert "Budget `team\u02cb*bold*\u02cb&lt;!here&gt;` is no longer at risk." in resolved
    assert resolved.count("`") == 2
